// The exec plan as C++ reads it from JavaScript (src/exec/exec-plan.ts): checked field by field,
// copied into owned strings and vectors. Everything here is allocated before clone; the child
// only reads it through the raw pointers of ChildPlan (spawn_child.h).
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace triggerd {

// The steps a pre-exec failure is reported at, in the order of EXEC_STEPS in
// src/exec/exec-plan.ts (src/native/spawn-addon.ts checks the two lists against each other).
enum ExecStepIndex : int {
  kStepCgroup = 0,
  kStepMountNamespace,
  kStepNetwork,
  kStepFds,
  kStepStdin,
  kStepStdout,
  kStepStderr,
  kStepLimits,
  kStepOomAdjust,
  kStepNice,
  kStepSetsid,
  kStepUmask,
  kStepGroup,
  kStepUser,
  kStepChdir,
  kStepCapabilities,
  kStepNoNewPrivileges,
  kStepExec,
  kStepCount,
};

extern const char* const kExecStepNames[kStepCount];

enum class MountKind : uint8_t { kBind, kTmpfs, kRemountReadOnly, kInaccessible };

struct MountSpec {
  MountKind kind = MountKind::kBind;
  std::string source;  // kBind
  std::string target;
  std::string data;    // kTmpfs: "mode=0755[,options]"
  bool read_only = false;
  bool recursive = false;
  bool optional = false;
};

// O_NONBLOCK on a passed fd's open file description (systemd's NonBlocking=).
enum class NonBlockMode : uint8_t { kKeep, kClear, kSet };

struct FdSpec {
  int child_fd;
  int parent_fd;  // -1: /dev/null
  NonBlockMode non_block = NonBlockMode::kKeep;
};

struct RlimitSpec {
  int resource;
  uint64_t soft;  // RLIM_INFINITY for -1
  uint64_t hard;
};

// Field names follow ExecPlan; `has_*` says whether an optional field was given.
struct PlanSpec {
  std::string path;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  bool has_cwd = false;
  std::string cwd;
  bool cwd_optional = false;
  bool has_uid = false;
  uid_t uid = 0;
  bool has_gid = false;
  gid_t gid = 0;
  bool has_groups = false;
  std::vector<gid_t> groups;
  bool has_umask = false;
  mode_t umask = 0;
  bool has_nice = false;
  int nice = 0;
  bool has_oom_score_adjust = false;
  int oom_score_adjust = 0;
  std::vector<RlimitSpec> rlimits;
  std::vector<FdSpec> fds;
  bool new_session = false;
  bool no_new_privileges = false;
  bool has_bounding_set = false;
  uint64_t bounding_set = 0;
  bool has_ambient = false;
  uint64_t ambient = 0;
  bool private_network = false;
  std::vector<MountSpec> mounts;
  bool has_cgroup = false;
  std::string cgroup;
  bool private_sysfs = false;
  std::vector<std::string> sysfs_submounts;
  bool has_inaccessible_sources = false;
  std::string inaccessible_directory;
  std::string inaccessible_file;
  bool set_listen_pid = false;
};

// Child fds above this are refused (they would only fail later, at RLIMIT_NOFILE).
constexpr int kMaxChildFd = 65535;
constexpr size_t kMaxSysfsSubmounts = 256;

// The property names ReadPlan looks up on every plan, created once: a lookup by a held key skips
// turning the C string into an internalized V8 string each time (the bulk of a named lookup).
enum PlanKey : int {
  kKeyPath = 0,
  kKeyArgv,
  kKeyEnv,
  kKeyCwd,
  kKeyCwdOptional,
  kKeyUid,
  kKeyGid,
  kKeyGroups,
  kKeyUmask,
  kKeyNice,
  kKeyOomScoreAdjust,
  kKeyRlimits,
  kKeyFds,
  kKeyNewSession,
  kKeyNoNewPrivileges,
  kKeyCapabilityBoundingSet,
  kKeyAmbientCapabilities,
  kKeyPrivateNetwork,
  kKeyMounts,
  kKeyCgroup,
  kKeyPrivateSysfs,
  kKeyInaccessibleSources,
  kKeySetListenPid,
  kKeyResource,
  kKeySoft,
  kKeyHard,
  kKeyChildFd,
  kKeyParentFd,
  kKeyNonBlocking,
  kKeyPid,
  kKeyPidfd,
  kPlanKeyCount,
};

// Node-API (before version 10) cannot hold a reference to a string, so the keys live in an
// array that is held.
class PlanKeys {
 public:
  explicit PlanKeys(Napi::Env env);
  Napi::Value Get(PlanKey key) const { return keys_.Value().Get(static_cast<uint32_t>(key)); }

 private:
  Napi::Reference<Napi::Array> keys_;
};

// Reads a plan object; throws a TypeError (code ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE)
// that names the offending field. `keys` are the environment's (the spawn addon keeps one set);
// without it a set is made for this call.
PlanSpec ReadPlan(Napi::Env env, Napi::Value value, const PlanKeys& keys);
PlanSpec ReadPlan(Napi::Env env, Napi::Value value);

}  // namespace triggerd
