#include "spawn_plan.h"

#include <sys/resource.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

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

constexpr const char* kPlanKeyNames[kPlanKeyCount] = {
    "path",       "argv",          "env",
    "cwd",        "cwdOptional",   "uid",
    "gid",        "groups",        "umask",
    "nice",       "oomScoreAdjust", "rlimits",
    "fds",        "newSession",    "noNewPrivileges",
    "capabilityBoundingSet", "ambientCapabilities", "privateNetwork",
    "mounts",     "cgroup",        "privateSysfs",
    "inaccessibleSources", "setListenPid", "resource",
    "soft",       "hard",          "childFd",
    "parentFd",   "nonBlocking",   "pid",
    "pidfd",
};

// A field's name for an error message ("plan.fds[2].childFd"), put together only when an error
// needs it: a valid plan builds no names.
struct FieldName {
  const char* base;
  int64_t index = -1;         // "[index]" when >= 0
  const char* key = nullptr;  // ".key" after that
  std::string str() const {
    std::string name = base;
    if (index >= 0) name += "[" + std::to_string(index) + "]";
    if (key != nullptr) name += std::string(".") + key;
    return name;
  }
};

Napi::TypeError WrongType(Napi::Env env, const std::string& name, const char* expected) {
  return MakeArgumentError(env, "The \"" + name + "\" property must be " + expected);
}

Napi::TypeError WrongValue(Napi::Env env, const std::string& name, const std::string& why) {
  return MakeArgumentError(env, "The \"" + name + "\" property " + why, "ERR_INVALID_ARG_VALUE");
}

// An object, not a function and not an array (one typeof: a function is napi_function).
bool IsPlainObject(Napi::Env env, const Napi::Value& value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_object) return false;
  return !value.IsArray();
}

// A string without NUL bytes (which would silently cut it short for the kernel). Short strings
// (nearly all) are copied out in one call through a stack buffer.
std::string ToCString(Napi::Env env, const Napi::Value& value, const FieldName& name,
                      bool allow_empty = true) {
  if (!value.IsString()) throw WrongType(env, name.str(), "a string");
  char buffer[256];
  size_t length = 0;
  napi_status status = napi_get_value_string_utf8(env, value, buffer, sizeof(buffer), &length);
  NAPI_THROW_IF_FAILED(env, status, std::string());
  std::string text;
  if (length + 1 < sizeof(buffer)) {
    text.assign(buffer, length);
  } else {
    text = value.As<Napi::String>().Utf8Value();  // may have been cut short: read it whole
  }
  if (memchr(text.data(), '\0', text.size()) != nullptr) {
    throw WrongValue(env, name.str(), "must not contain NUL bytes");
  }
  if (!allow_empty && text.empty()) throw WrongValue(env, name.str(), "must not be empty");
  return text;
}

std::string AbsolutePath(Napi::Env env, const Napi::Value& value, const FieldName& name) {
  std::string path = ToCString(env, value, name, false);
  if (path[0] != '/') throw WrongValue(env, name.str(), "must be an absolute path, got " + path);
  if (path.size() >= PATH_MAX) throw WrongValue(env, name.str(), "is longer than PATH_MAX");
  return path;
}

bool OptionalBool(Napi::Env env, const Napi::Value& value, const FieldName& name) {
  if (value.IsUndefined()) return false;
  if (!value.IsBoolean()) throw WrongType(env, name.str(), "a boolean");
  return value.As<Napi::Boolean>().Value();
}

bool OptionalBool(Napi::Env env, const Napi::Object& object, const std::string& parent,
                  const char* key) {
  return OptionalBool(env, object.Get(key), FieldName{parent.c_str(), -1, key});
}

// IntegerArgument's check, with its error (and the name) left to it when the value fails.
int64_t Integer(Napi::Env env, const Napi::Value& value, const FieldName& name, int64_t min,
                int64_t max) {
  if (value.IsNumber()) {
    double number = value.As<Napi::Number>().DoubleValue();
    if (number >= static_cast<double>(min) && number <= static_cast<double>(max) &&
        std::trunc(number) == number) {
      return static_cast<int64_t>(number);
    }
  }
  return IntegerArgument(env, value, name.str().c_str(), min, max);
}

Napi::Array ArrayField(Napi::Env env, const Napi::Value& value, const FieldName& name,
                       bool required) {
  if (value.IsUndefined() && !required) return Napi::Array();
  if (!value.IsArray()) throw WrongType(env, name.str(), "an array");
  return value.As<Napi::Array>();
}

std::vector<std::string> StringArray(Napi::Env env, const Napi::Value& value, const char* name) {
  Napi::Array array = ArrayField(env, value, FieldName{name}, true);
  std::vector<std::string> out;
  uint32_t length = array.Length();
  out.reserve(length);
  for (uint32_t i = 0; i < length; i++) {
    out.push_back(ToCString(env, array.Get(i), FieldName{name, i}));
  }
  return out;
}

// A capability mask: a bigint in 0..2^64-1.
uint64_t CapabilityMask(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsBigInt()) throw WrongType(env, name, "a bigint");
  bool lossless = false;
  uint64_t mask = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw WrongValue(env, name, "must be a bigint in 0..2^64-1");
  return mask;
}

uint64_t LimitValue(Napi::Env env, const Napi::Value& value, const FieldName& name) {
  int64_t number = Integer(env, value, name, -1, kMaxSafeInteger);
  return number < 0 ? RLIM_INFINITY : static_cast<uint64_t>(number);
}

MountSpec ReadMount(Napi::Env env, const Napi::Value& value, const std::string& name) {
  if (!IsPlainObject(env, value)) throw WrongType(env, name, "an object");
  Napi::Object object = value.As<Napi::Object>();
  const char* base = name.c_str();
  std::string kind = ToCString(env, object.Get("kind"), FieldName{base, -1, "kind"});
  MountSpec mount;
  mount.target = AbsolutePath(env, object.Get("target"), FieldName{base, -1, "target"});
  if (kind == "bind") {
    mount.kind = MountKind::kBind;
    mount.source = AbsolutePath(env, object.Get("source"), FieldName{base, -1, "source"});
    mount.read_only = OptionalBool(env, object, name, "readOnly");
    mount.recursive = OptionalBool(env, object, name, "recursive");
    mount.optional = OptionalBool(env, object, name, "optional");
  } else if (kind == "tmpfs") {
    mount.kind = MountKind::kTmpfs;
    int64_t mode = Integer(env, object.Get("mode"), FieldName{base, -1, "mode"}, 0, 07777);
    char text[16];
    snprintf(text, sizeof(text), "mode=%04o", static_cast<unsigned>(mode));
    mount.data = text;
    Napi::Value options = object.Get("options");
    if (!options.IsUndefined()) {
      std::string extra = ToCString(env, options, FieldName{base, -1, "options"});
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
    throw WrongValue(env, name + ".kind",
                     "must be 'bind', 'tmpfs', 'remount-read-only' or 'inaccessible', got '" +
                         kind + "'");
  }
  return mount;
}

}  // namespace

PlanKeys::PlanKeys(Napi::Env env) {
  Napi::Array keys = Napi::Array::New(env, kPlanKeyCount);
  for (uint32_t i = 0; i < kPlanKeyCount; i++) {
    keys.Set(i, Napi::String::New(env, kPlanKeyNames[i]));
  }
  keys_ = Napi::Persistent(keys);
}

PlanSpec ReadPlan(Napi::Env env, Napi::Value value) {
  PlanKeys keys(env);
  return ReadPlan(env, value, keys);
}

PlanSpec ReadPlan(Napi::Env env, Napi::Value value, const PlanKeys& keys) {
  if (!IsPlainObject(env, value)) {
    throw MakeArgumentError(env, "The \"plan\" argument must be an object");
  }
  Napi::Object plan = value.As<Napi::Object>();
  auto get = [&](PlanKey key) { return plan.Get(keys.Get(key)); };
  PlanSpec spec;

  spec.path = AbsolutePath(env, get(kKeyPath), FieldName{"plan.path"});
  spec.argv = StringArray(env, get(kKeyArgv), "plan.argv");
  if (spec.argv.empty()) throw WrongValue(env, "plan.argv", "must have at least argv[0]");
  spec.env = StringArray(env, get(kKeyEnv), "plan.env");
  for (size_t i = 0; i < spec.env.size(); i++) {
    if (spec.env[i].find('=') == std::string::npos || spec.env[i][0] == '=') {
      throw WrongValue(env, "plan.env[" + std::to_string(i) + "]", "must be KEY=VALUE");
    }
  }

  Napi::Value cwd = get(kKeyCwd);
  if (!cwd.IsUndefined()) {
    spec.has_cwd = true;
    spec.cwd = AbsolutePath(env, cwd, FieldName{"plan.cwd"});
  }
  spec.cwd_optional = OptionalBool(env, get(kKeyCwdOptional), FieldName{"plan.cwdOptional"});

  // (uid_t)-1 means "unchanged" to the set*id calls, so it is not a valid id here.
  const int64_t max_id = static_cast<int64_t>(UINT32_MAX) - 1;
  Napi::Value uid = get(kKeyUid);
  if (!uid.IsUndefined()) {
    spec.has_uid = true;
    spec.uid = static_cast<uid_t>(Integer(env, uid, FieldName{"plan.uid"}, 0, max_id));
  }
  Napi::Value gid = get(kKeyGid);
  if (!gid.IsUndefined()) {
    spec.has_gid = true;
    spec.gid = static_cast<gid_t>(Integer(env, gid, FieldName{"plan.gid"}, 0, max_id));
  }
  Napi::Value groups = get(kKeyGroups);
  if (!groups.IsUndefined()) {
    if (!groups.IsArray()) throw WrongType(env, "plan.groups", "an array");
    Napi::Array array = groups.As<Napi::Array>();
    uint32_t length = array.Length();
    if (length > 65536) throw WrongValue(env, "plan.groups", "has more than 65536 groups");
    spec.has_groups = true;
    for (uint32_t i = 0; i < length; i++) {
      spec.groups.push_back(
          static_cast<gid_t>(Integer(env, array.Get(i), FieldName{"plan.groups", i}, 0, max_id)));
    }
  }
  Napi::Value umask = get(kKeyUmask);
  if (!umask.IsUndefined()) {
    spec.has_umask = true;
    spec.umask = static_cast<mode_t>(Integer(env, umask, FieldName{"plan.umask"}, 0, 0777));
  }
  Napi::Value nice = get(kKeyNice);
  if (!nice.IsUndefined()) {
    spec.has_nice = true;
    spec.nice = static_cast<int>(Integer(env, nice, FieldName{"plan.nice"}, -20, 19));
  }
  Napi::Value oom = get(kKeyOomScoreAdjust);
  if (!oom.IsUndefined()) {
    spec.has_oom_score_adjust = true;
    spec.oom_score_adjust =
        static_cast<int>(Integer(env, oom, FieldName{"plan.oomScoreAdjust"}, -1000, 1000));
  }

  Napi::Array rlimits = ArrayField(env, get(kKeyRlimits), FieldName{"plan.rlimits"}, true);
  uint32_t rlimit_count = rlimits.Length();
  for (uint32_t i = 0; i < rlimit_count; i++) {
    Napi::Value item = rlimits.Get(i);
    if (!IsPlainObject(env, item)) {
      throw WrongType(env, FieldName{"plan.rlimits", i}.str(), "an object");
    }
    Napi::Object limit = item.As<Napi::Object>();
    RlimitSpec rlimit;
    rlimit.resource = static_cast<int>(Integer(env, limit.Get(keys.Get(kKeyResource)),
                                               FieldName{"plan.rlimits", i, "resource"}, 0,
                                               RLIM_NLIMITS - 1));
    rlimit.soft =
        LimitValue(env, limit.Get(keys.Get(kKeySoft)), FieldName{"plan.rlimits", i, "soft"});
    rlimit.hard =
        LimitValue(env, limit.Get(keys.Get(kKeyHard)), FieldName{"plan.rlimits", i, "hard"});
    spec.rlimits.push_back(rlimit);
  }

  Napi::Array fds = ArrayField(env, get(kKeyFds), FieldName{"plan.fds"}, true);
  uint32_t fd_count = fds.Length();
  spec.fds.reserve(fd_count);
  std::vector<bool> seen;
  if (fd_count > 32) seen.assign(kMaxChildFd + 1, false);
  for (uint32_t i = 0; i < fd_count; i++) {
    Napi::Value item = fds.Get(i);
    if (!IsPlainObject(env, item)) {
      throw WrongType(env, FieldName{"plan.fds", i}.str(), "an object");
    }
    Napi::Object mapping = item.As<Napi::Object>();
    FdSpec fd;
    fd.child_fd = static_cast<int>(Integer(env, mapping.Get(keys.Get(kKeyChildFd)),
                                           FieldName{"plan.fds", i, "childFd"}, 0, kMaxChildFd));
    fd.parent_fd = static_cast<int>(Integer(env, mapping.Get(keys.Get(kKeyParentFd)),
                                            FieldName{"plan.fds", i, "parentFd"}, -1, INT_MAX));
    Napi::Value non_blocking = mapping.Get(keys.Get(kKeyNonBlocking));
    if (!non_blocking.IsUndefined()) {
      if (!non_blocking.IsBoolean()) {
        throw WrongType(env, FieldName{"plan.fds", i, "nonBlocking"}.str(), "a boolean");
      }
      fd.non_block =
          non_blocking.As<Napi::Boolean>().Value() ? NonBlockMode::kSet : NonBlockMode::kClear;
    }
    // A repeated child fd: a short list is scanned, a long one gets a table of 65536 flags.
    bool repeated = false;
    if (!seen.empty()) {
      repeated = seen[fd.child_fd];
      seen[fd.child_fd] = true;
    } else {
      for (const FdSpec& earlier : spec.fds) repeated = repeated || earlier.child_fd == fd.child_fd;
    }
    if (repeated) {
      throw WrongValue(env, FieldName{"plan.fds", i, "childFd"}.str(),
                       "repeats child fd " + std::to_string(fd.child_fd));
    }
    spec.fds.push_back(fd);
  }
  bool has_std[3] = {false, false, false};
  for (const FdSpec& fd : spec.fds) {
    if (fd.child_fd <= 2) has_std[fd.child_fd] = true;
  }
  if (!has_std[0] || !has_std[1] || !has_std[2]) {
    throw WrongValue(env, "plan.fds", "must map child fds 0, 1 and 2");
  }

  spec.new_session = OptionalBool(env, get(kKeyNewSession), FieldName{"plan.newSession"});
  spec.no_new_privileges =
      OptionalBool(env, get(kKeyNoNewPrivileges), FieldName{"plan.noNewPrivileges"});
  Napi::Value bounding = get(kKeyCapabilityBoundingSet);
  if (!bounding.IsUndefined()) {
    spec.has_bounding_set = true;
    spec.bounding_set = CapabilityMask(env, bounding, "plan.capabilityBoundingSet");
  }
  Napi::Value ambient = get(kKeyAmbientCapabilities);
  if (!ambient.IsUndefined()) {
    spec.ambient = CapabilityMask(env, ambient, "plan.ambientCapabilities");
    spec.has_ambient = spec.ambient != 0;
  }
  spec.private_network =
      OptionalBool(env, get(kKeyPrivateNetwork), FieldName{"plan.privateNetwork"});

  Napi::Array mounts = ArrayField(env, get(kKeyMounts), FieldName{"plan.mounts"}, true);
  uint32_t mount_count = mounts.Length();
  for (uint32_t i = 0; i < mount_count; i++) {
    spec.mounts.push_back(ReadMount(env, mounts.Get(i), FieldName{"plan.mounts", i}.str()));
  }

  Napi::Value cgroup = get(kKeyCgroup);
  if (!cgroup.IsUndefined()) {
    spec.has_cgroup = true;
    spec.cgroup = AbsolutePath(env, cgroup, FieldName{"plan.cgroup"});
  }

  Napi::Value sysfs = get(kKeyPrivateSysfs);
  if (!sysfs.IsUndefined()) {
    if (!IsPlainObject(env, sysfs)) throw WrongType(env, "plan.privateSysfs", "an object");
    Napi::Object object = sysfs.As<Napi::Object>();
    Napi::Array submounts =
        ArrayField(env, object.Get("submounts"), FieldName{"plan.privateSysfs", -1, "submounts"},
                   true);
    if (submounts.Length() > kMaxSysfsSubmounts) {
      throw WrongValue(env, "plan.privateSysfs.submounts", "has more than 256 entries");
    }
    for (uint32_t i = 0; i < submounts.Length(); i++) {
      spec.sysfs_submounts.push_back(
          AbsolutePath(env, submounts.Get(i), FieldName{"plan.privateSysfs.submounts", i}));
    }
    if (!spec.private_network) {
      throw WrongValue(env, "plan.privateSysfs", "needs plan.privateNetwork");
    }
    spec.private_sysfs = true;
  }

  Napi::Value sources = get(kKeyInaccessibleSources);
  if (!sources.IsUndefined()) {
    if (!IsPlainObject(env, sources)) throw WrongType(env, "plan.inaccessibleSources", "an object");
    Napi::Object object = sources.As<Napi::Object>();
    spec.has_inaccessible_sources = true;
    spec.inaccessible_directory = AbsolutePath(env, object.Get("directory"),
                                               FieldName{"plan.inaccessibleSources.directory"});
    spec.inaccessible_file =
        AbsolutePath(env, object.Get("file"), FieldName{"plan.inaccessibleSources.file"});
  }
  spec.set_listen_pid = OptionalBool(env, get(kKeySetListenPid), FieldName{"plan.setListenPid"});
  return spec;
}

}  // namespace triggerd
