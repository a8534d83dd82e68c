// Entry point of triggerd_devnode.node: the few calls on device nodes that Node has no binding
// for — extended attributes (SECLABEL{selinux|smack}) and the evdev EVIOCGABS ioctl (input_id's
// ID_INPUT_WIDTH_MM/HEIGHT_MM). Each call is one short synchronous syscall on a path, as udevd
// makes them; bytes go back to TypeScript unparsed (see src/native/devnode-addon.ts).
#include <napi.h>

#include <fcntl.h>
#include <linux/input.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "../netlink/system_error.h"

namespace triggerd {

namespace {

// linux/limits.h: the largest value the kernel stores for one attribute.
constexpr size_t kXattrSizeMax = 65536;

std::string StringArgument(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsString()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be a string");
  }
  std::string text = value.As<Napi::String>().Utf8Value();
  // A NUL would silently cut the path or attribute name short in the C call.
  if (text.empty() || std::memchr(text.data(), '\0', text.size()) != nullptr) {
    throw MakeArgumentError(
        env, std::string("The \"") + name + "\" argument must be a non-empty string without NUL",
        "ERR_INVALID_ARG_VALUE");
  }
  return text;
}

bool OptionalBoolean(Napi::Env env, const Napi::Value& value, const char* name) {
  if (value.IsUndefined()) return false;
  if (!value.IsBoolean()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be a boolean");
  }
  return value.As<Napi::Boolean>().Value();
}

Napi::Error PathError(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Napi::Error error = MakeSystemError(env, err, syscall);
  error.Set("path", Napi::String::New(env, path));
  return error;
}

}  // namespace

class DevnodeAddon : public Napi::Addon<DevnodeAddon> {
 public:
  DevnodeAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports,
                {
                    InstanceMethod<&DevnodeAddon::SetXattr>("setXattr", napi_enumerable),
                    InstanceMethod<&DevnodeAddon::GetXattr>("getXattr", napi_enumerable),
                    InstanceMethod<&DevnodeAddon::ReadAbsInfo>("readAbsInfo", napi_enumerable),
                });
  }

 private:
  // setXattr(path: string, name: string, value: Buffer, noFollow?: boolean): undefined
  Napi::Value SetXattr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string path = StringArgument(env, info[0], "path");
    std::string name = StringArgument(env, info[1], "name");
    if (!info[2].IsBuffer()) {
      throw MakeArgumentError(env, "The \"value\" argument must be a Buffer");
    }
    Napi::Buffer<uint8_t> value = info[2].As<Napi::Buffer<uint8_t>>();
    bool no_follow = OptionalBoolean(env, info[3], "noFollow");
    int rc = no_follow ? lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0)
                       : setxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0);
    if (rc < 0) throw PathError(env, errno, no_follow ? "lsetxattr" : "setxattr", path);
    return env.Undefined();
  }

  // getXattr(path: string, name: string, noFollow?: boolean): Buffer
  Napi::Value GetXattr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string path = StringArgument(env, info[0], "path");
    std::string name = StringArgument(env, info[1], "name");
    bool no_follow = OptionalBoolean(env, info[2], "noFollow");
    const char* syscall = no_follow ? "lgetxattr" : "getxattr";
    auto get = [&](void* data, size_t size) {
      return no_follow ? lgetxattr(path.c_str(), name.c_str(), data, size)
                       : getxattr(path.c_str(), name.c_str(), data, size);
    };
    // Ask for the size, then read; the value may grow in between (ERANGE): ask again, a few times.
    for (int attempt = 0; attempt < 4; attempt++) {
      ssize_t size = get(nullptr, 0);
      if (size < 0) throw PathError(env, errno, syscall, path);
      std::vector<uint8_t> data(static_cast<size_t>(size) > kXattrSizeMax ? kXattrSizeMax
                                                                         : static_cast<size_t>(size));
      ssize_t got = get(data.empty() ? nullptr : data.data(), data.size());
      if (got < 0 && errno == ERANGE) continue;
      if (got < 0) throw PathError(env, errno, syscall, path);
      return Napi::Buffer<uint8_t>::Copy(env, data.data(), static_cast<size_t>(got));
    }
    throw PathError(env, ERANGE, syscall, path);
  }

  // readAbsInfo(devnode: string, axis: number): Buffer (struct input_absinfo, 24 bytes)
  Napi::Value ReadAbsInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string path = StringArgument(env, info[0], "devnode");
    int axis = static_cast<int>(IntegerArgument(env, info[1], "axis", 0, ABS_MAX));
    // As udev's input_id opens the node: non-blocking, never becoming a controlling tty.
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) throw PathError(env, errno, "open", path);
    struct input_absinfo absinfo;
    std::memset(&absinfo, 0, sizeof(absinfo));
    int rc = ioctl(fd, EVIOCGABS(axis), &absinfo);
    int err = errno;
    close(fd);
    if (rc < 0) throw PathError(env, err, "ioctl", path);
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(&absinfo),
                                       sizeof(absinfo));
  }
};

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::DevnodeAddon;
NODE_API_ADDON(DevnodeAddon)
