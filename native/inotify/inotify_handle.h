// The JavaScript InotifyHandle: owns one inotify fd (IN_NONBLOCK | IN_CLOEXEC), adds and removes
// watches, watches the fd with uv_poll on the environment's own loop, and on each wake-up drains
// it into one Buffer of raw inotify_event records for `onBatch`. It parses nothing: TypeScript
// does (parseInotifyRecords). IN_Q_OVERFLOW arrives as a record like any other.
//
// Armed calls (armCall): a one-shot function tied to a wd and a mask. When a wake-up's records
// hold one on that wd about the watched inode itself (no name) with a bit of the mask, the
// function is called once, before onBatch gets the batch. With a prepared launch of
// triggerd_spawn.node, its clone comes first, from here: src/core/path-armed-start.ts starts a
// path unit's job that way, with no JavaScript between the wake-up's read and the clone.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "../common/native_launch.h"
#include "../common/polled_fd_handle.h"

namespace triggerd {

class InotifyAddon;

class InotifyHandle : public PolledFdHandle<InotifyHandle, InotifyAddon> {
 public:
  // One read() gets at most this much; far above one record (16 + NAME_MAX + 1 bytes).
  static constexpr size_t kReadBytes = 64 * 1024;
  // One wake-up hands over at most this much; the rest waits in the kernel's queue (bounded by
  // fs.inotify.max_queued_events, beyond which the kernel queues IN_Q_OVERFLOW) and uv_poll,
  // level-triggered, wakes us again.
  static constexpr size_t kMaxBatchBytes = 1024 * 1024;

  static constexpr napi_type_tag kTypeTag = {0x0ccd5bcadd314eb0ULL, 0x500df749208f981fULL};
  static constexpr const char* kClassName = "InotifyHandle";
  static constexpr const char* kCreatedBy = "InotifyHandle is created by openInotify()";

  static Napi::Function DefineClass(Napi::Env env);

  // Made by openInotify() only (PolledFdAddon::CreateHandle); the kernel drops every watch of
  // the instance with its fd.
  explicit InotifyHandle(const Napi::CallbackInfo& info);

 private:
  friend Base;

  void OnWakeUp(Napi::Env env, int status);
  // Reads until EAGAIN or kMaxBatchBytes into `out`; returns 0 or the errno of a failed read.
  int Drain(std::vector<uint8_t>* out);

  Napi::Value AddWatch(const Napi::CallbackInfo& info);
  void RemoveWatch(const Napi::CallbackInfo& info);
  Napi::Value ArmCall(const Napi::CallbackInfo& info);
  Napi::Value DisarmCall(const Napi::CallbackInfo& info);
  // Calls (and drops) the armed functions whose wd and mask a record of `bytes` matches.
  void FireArmed(Napi::Env env, const std::vector<uint8_t>& bytes);

  struct ArmedCall {
    uint32_t id;
    uint32_t mask;
    Napi::FunctionReference fn;
    // armCall's prepared launch (native/common/native_launch.h), cloned before `fn` is called;
    // `owner` keeps the object that holds it alive.
    NativeLaunch* launch = nullptr;
    Napi::ObjectReference owner;
  };

  std::unique_ptr<uint8_t[]> read_buffer_;
  // By wd: a burst's every record is looked up, and 1,000 path units may each have an arm.
  std::unordered_map<int, std::vector<ArmedCall>> armed_;
  uint32_t next_arm_id_ = 1;
};

}  // namespace triggerd
