// Placeholder entry point of triggerd_notify.node; replaced by the real addon.
#include <napi.h>

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }

NODE_API_MODULE(triggerd_notify, Init)
