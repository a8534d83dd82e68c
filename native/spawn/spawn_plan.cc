#include "spawn_plan.h"

#include <sys/resource.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "../netlink/system_error.h"

namespace triggerd {

const char* const kExecStepNames[kStepCount] = {
    "CGROUP", "MOUNT_NAMESPACE", "NETWORK", "FDS",   "STDIN",  "STDOUT",
    "STDERR", "LIMITS",          "OOM_ADJUST", "NICE", "SETSID", "UMASK",
    "GROUP",  "USER",            "CHDIR",   "CAPABILITIES", "NO_NEW_PRIVILEGES", "EXEC",
};

namespace {

// 2^53: every integer up to here is exact in a JavaScript number.
constexpr int64_t kMaxSafeInteger = 9007199254740991LL;

std::string Field(const std::string& parent, const char* key) { return parent + "." + key; }

Napi::TypeError WrongType(Napi::Env env, const std::string& name, const char* expected) {
  return MakeArgumentError(env, "The \"" + name + "\" property must be " + expected);
}

Napi::TypeError WrongValue(Napi::Env env, const std::string& name, const std::string& why) {
  return MakeArgumentError(env, "The \"" + name + "\" property " + why, "ERR_INVALID_ARG_VALUE");
}

bool IsPlainObject(const Napi::Value& value) {
  return value.IsObject() && !value.IsFunction() && !value.IsArray();
}

// A string without NUL bytes (which would silently cut it short for the kernel).
std::string ToCString(Napi::Env env, const Napi::Value& value, const std::string& name,
                      bool allow_empty = true) {
  if (!value.IsString()) throw WrongType(env, name, "a string");
  std::string text = value.As<Napi::String>().Utf8Value();
  if (text.find('\0') != std::string::npos) throw WrongValue(env, name, "must not contain NUL bytes");
  if (!allow_empty && text.empty()) throw WrongValue(env, name, "must not be empty");
  return text;
}

std::string AbsolutePath(Napi::Env env, const Napi::Value& value, const std::string& name) {
  std::string path = ToCString(env, value, name, false);
  if (path[0] != '/') throw WrongValue(env, name, "must be an absolute path, got " + path);
  if (path.size() >= PATH_MAX) throw WrongValue(env, name, "is longer than PATH_MAX");
  return path;
}

bool OptionalBool(Napi::Env env, const Napi::Object& object, const std::string& parent,
                  const char* key) {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined()) return false;
  if (!value.IsBoolean()) throw WrongType(env, Field(parent, key), "a boolean");
  return value.As<Napi::Boolean>().Value();
}

int64_t Integer(Napi::Env env, const Napi::Value& value, const std::string& name, int64_t min,
                int64_t max) {
  return IntegerArgument(env, value, name.c_str(), min, max);
}

Napi::Array ArrayField(Napi::Env env, const Napi::Object& object, const std::string& parent,
                       const char* key, bool required) {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined() && !required) return Napi::Array();
  if (!value.IsArray()) throw WrongType(env, Field(parent, key), "an array");
  return value.As<Napi::Array>();
}

std::vector<std::string> StringArray(Napi::Env env, const Napi::Object& object,
                                     const std::string& parent, const char* key, bool required) {
  Napi::Array array = ArrayField(env, object, parent, key, required);
  std::vector<std::string> out;
  if (array.IsEmpty()) return out;
  uint32_t length = array.Length();
  out.reserve(length);
  for (uint32_t i = 0; i < length; i++) {
    out.push_back(
        ToCString(env, array.Get(i), Field(parent, key) + "[" + std::to_string(i) + "]"));
  }
  return out;
}

// A capability mask: a bigint in 0..2^64-1.
uint64_t CapabilityMask(Napi::Env env, const Napi::Value& value, const std::string& name) {
  if (!value.IsBigInt()) throw WrongType(env, name, "a bigint");
  bool lossless = false;
  uint64_t mask = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw WrongValue(env, name, "must be a bigint in 0..2^64-1");
  return mask;
}

uint64_t LimitValue(Napi::Env env, const Napi::Value& value, const std::string& name) {
  int64_t number = Integer(env, value, name, -1, kMaxSafeInteger);
  return number < 0 ? RLIM_INFINITY : static_cast<uint64_t>(number);
}

MountSpec ReadMount(Napi::Env env, const Napi::Value& value, const std::string& name) {
  if (!IsPlainObject(value)) throw WrongType(env, name, "an object");
  Napi::Object object = value.As<Napi::Object>();
  std::string kind = ToCString(env, object.Get("kind"), Field(name, "kind"));
  MountSpec mount;
  mount.target = AbsolutePath(env, object.Get("target"), Field(name, "target"));
  if (kind == "bind") {
    mount.kind = MountKind::kBind;
    mount.source = AbsolutePath(env, object.Get("source"), Field(name, "source"));
    mount.read_only = OptionalBool(env, object, name, "readOnly");
    mount.recursive = OptionalBool(env, object, name, "recursive");
    mount.optional = OptionalBool(env, object, name, "optional");
  } else if (kind == "tmpfs") {
    mount.kind = MountKind::kTmpfs;
    int64_t mode = Integer(env, object.Get("mode"), Field(name, "mode"), 0, 07777);
    char text[16];
    snprintf(text, sizeof(text), "mode=%04o", static_cast<unsigned>(mode));
    mount.data = text;
    Napi::Value options = object.Get("options");
    if (!options.IsUndefined()) {
      std::string extra = ToCString(env, options, Field(name, "options"));
      if (!extra.empty()) mount.data += "," + extra;
    }
    mount.optional = OptionalBool(env, object, name, "optional");
  } else if (kind == "remount-read-only") {
    mount.kind = MountKind::kRemountReadOnly;
    mount.recursive = OptionalBool(env, object, name, "recursive");
    mount.optional = OptionalBool(env, object, name, "optional");
  } else if (kind == "inaccessible") {
    mount.kind = MountKind::kInaccessible;
    mount.optional = OptionalBool(env, object, name, "optional");
  } else {
    throw WrongValue(env, Field(name, "kind"),
                     "must be 'bind', 'tmpfs', 'remount-read-only' or 'inaccessible', got '" +
                         kind + "'");
  }
  return mount;
}

}  // namespace

PlanSpec ReadPlan(Napi::Env env, Napi::Value value) {
  if (!IsPlainObject(value)) {
    throw MakeArgumentError(env, "The \"plan\" argument must be an object");
  }
  Napi::Object plan = value.As<Napi::Object>();
  const std::string p = "plan";
  PlanSpec spec;

  spec.path = AbsolutePath(env, plan.Get("path"), "plan.path");
  spec.argv = StringArray(env, plan, p, "argv", true);
  if (spec.argv.empty()) throw WrongValue(env, "plan.argv", "must have at least argv[0]");
  spec.env = StringArray(env, plan, p, "env", true);
  for (size_t i = 0; i < spec.env.size(); i++) {
    if (spec.env[i].find('=') == std::string::npos || spec.env[i][0] == '=') {
      throw WrongValue(env, "plan.env[" + std::to_string(i) + "]", "must be KEY=VALUE");
    }
  }

  Napi::Value cwd = plan.Get("cwd");
  if (!cwd.IsUndefined()) {
    spec.has_cwd = true;
    spec.cwd = AbsolutePath(env, cwd, "plan.cwd");
  }
  spec.cwd_optional = OptionalBool(env, plan, p, "cwdOptional");

  // (uid_t)-1 means "unchanged" to the set*id calls, so it is not a valid id here.
  const int64_t max_id = static_cast<int64_t>(UINT32_MAX) - 1;
  Napi::Value uid = plan.Get("uid");
  if (!uid.IsUndefined()) {
    spec.has_uid = true;
    spec.uid = static_cast<uid_t>(Integer(env, uid, "plan.uid", 0, max_id));
  }
  Napi::Value gid = plan.Get("gid");
  if (!gid.IsUndefined()) {
    spec.has_gid = true;
    spec.gid = static_cast<gid_t>(Integer(env, gid, "plan.gid", 0, max_id));
  }
  Napi::Value groups = plan.Get("groups");
  if (!groups.IsUndefined()) {
    if (!groups.IsArray()) throw WrongType(env, "plan.groups", "an array");
    Napi::Array array = groups.As<Napi::Array>();
    if (array.Length() > 65536) throw WrongValue(env, "plan.groups", "has more than 65536 groups");
    spec.has_groups = true;
    for (uint32_t i = 0; i < array.Length(); i++) {
      spec.groups.push_back(static_cast<gid_t>(
          Integer(env, array.Get(i), "plan.groups[" + std::to_string(i) + "]", 0, max_id)));
    }
  }
  Napi::Value umask = plan.Get("umask");
  if (!umask.IsUndefined()) {
    spec.has_umask = true;
    spec.umask = static_cast<mode_t>(Integer(env, umask, "plan.umask", 0, 0777));
  }
  Napi::Value nice = plan.Get("nice");
  if (!nice.IsUndefined()) {
    spec.has_nice = true;
    spec.nice = static_cast<int>(Integer(env, nice, "plan.nice", -20, 19));
  }
  Napi::Value oom = plan.Get("oomScoreAdjust");
  if (!oom.IsUndefined()) {
    spec.has_oom_score_adjust = true;
    spec.oom_score_adjust = static_cast<int>(Integer(env, oom, "plan.oomScoreAdjust", -1000, 1000));
  }

  Napi::Array rlimits = ArrayField(env, plan, p, "rlimits", true);
  for (uint32_t i = 0; i < rlimits.Length(); i++) {
    std::string name = "plan.rlimits[" + std::to_string(i) + "]";
    Napi::Value item = rlimits.Get(i);
    if (!IsPlainObject(item)) throw WrongType(env, name, "an object");
    Napi::Object limit = item.As<Napi::Object>();
    RlimitSpec rlimit;
    rlimit.resource =
        static_cast<int>(Integer(env, limit.Get("resource"), Field(name, "resource"), 0, RLIM_NLIMITS - 1));
    rlimit.soft = LimitValue(env, limit.Get("soft"), Field(name, "soft"));
    rlimit.hard = LimitValue(env, limit.Get("hard"), Field(name, "hard"));
    spec.rlimits.push_back(rlimit);
  }

  Napi::Array fds = ArrayField(env, plan, p, "fds", true);
  std::vector<bool> seen(kMaxChildFd + 1, false);
  for (uint32_t i = 0; i < fds.Length(); i++) {
    std::string name = "plan.fds[" + std::to_string(i) + "]";
    Napi::Value item = fds.Get(i);
    if (!IsPlainObject(item)) throw WrongType(env, name, "an object");
    Napi::Object mapping = item.As<Napi::Object>();
    FdSpec fd;
    fd.child_fd = static_cast<int>(Integer(env, mapping.Get("childFd"), Field(name, "childFd"), 0, kMaxChildFd));
    fd.parent_fd = static_cast<int>(Integer(env, mapping.Get("parentFd"), Field(name, "parentFd"), -1, INT_MAX));
    Napi::Value non_blocking = mapping.Get("nonBlocking");
    if (!non_blocking.IsUndefined()) {
      if (!non_blocking.IsBoolean()) throw WrongType(env, Field(name, "nonBlocking"), "a boolean");
      fd.non_block =
          non_blocking.As<Napi::Boolean>().Value() ? NonBlockMode::kSet : NonBlockMode::kClear;
    }
    if (seen[fd.child_fd]) {
      throw WrongValue(env, Field(name, "childFd"), "repeats child fd " + std::to_string(fd.child_fd));
    }
    seen[fd.child_fd] = true;
    spec.fds.push_back(fd);
  }
  if (!seen[0] || !seen[1] || !seen[2]) {
    throw WrongValue(env, "plan.fds", "must map child fds 0, 1 and 2");
  }

  spec.new_session = OptionalBool(env, plan, p, "newSession");
  spec.no_new_privileges = OptionalBool(env, plan, p, "noNewPrivileges");
  Napi::Value bounding = plan.Get("capabilityBoundingSet");
  if (!bounding.IsUndefined()) {
    spec.has_bounding_set = true;
    spec.bounding_set = CapabilityMask(env, bounding, "plan.capabilityBoundingSet");
  }
  Napi::Value ambient = plan.Get("ambientCapabilities");
  if (!ambient.IsUndefined()) {
    spec.ambient = CapabilityMask(env, ambient, "plan.ambientCapabilities");
    spec.has_ambient = spec.ambient != 0;
  }
  spec.private_network = OptionalBool(env, plan, p, "privateNetwork");

  Napi::Array mounts = ArrayField(env, plan, p, "mounts", true);
  for (uint32_t i = 0; i < mounts.Length(); i++) {
    spec.mounts.push_back(ReadMount(env, mounts.Get(i), "plan.mounts[" + std::to_string(i) + "]"));
  }

  Napi::Value cgroup = plan.Get("cgroup");
  if (!cgroup.IsUndefined()) {
    spec.has_cgroup = true;
    spec.cgroup = AbsolutePath(env, cgroup, "plan.cgroup");
  }

  Napi::Value sysfs = plan.Get("privateSysfs");
  if (!sysfs.IsUndefined()) {
    if (!IsPlainObject(sysfs)) throw WrongType(env, "plan.privateSysfs", "an object");
    Napi::Object object = sysfs.As<Napi::Object>();
    Napi::Array submounts = ArrayField(env, object, "plan.privateSysfs", "submounts", true);
    if (submounts.Length() > kMaxSysfsSubmounts) {
      throw WrongValue(env, "plan.privateSysfs.submounts", "has more than 256 entries");
    }
    for (uint32_t i = 0; i < submounts.Length(); i++) {
      spec.sysfs_submounts.push_back(AbsolutePath(
          env, submounts.Get(i), "plan.privateSysfs.submounts[" + std::to_string(i) + "]"));
    }
    if (!spec.private_network) {
      throw WrongValue(env, "plan.privateSysfs", "needs plan.privateNetwork");
    }
    spec.private_sysfs = true;
  }

  Napi::Value sources = plan.Get("inaccessibleSources");
  if (!sources.IsUndefined()) {
    if (!IsPlainObject(sources)) throw WrongType(env, "plan.inaccessibleSources", "an object");
    Napi::Object object = sources.As<Napi::Object>();
    spec.has_inaccessible_sources = true;
    spec.inaccessible_directory =
        AbsolutePath(env, object.Get("directory"), "plan.inaccessibleSources.directory");
    spec.inaccessible_file = AbsolutePath(env, object.Get("file"), "plan.inaccessibleSources.file");
  }
  spec.set_listen_pid = OptionalBool(env, plan, p, "setListenPid");
  return spec;
}

}  // namespace triggerd
