{
  # triggerd's native addon: build/Release/triggerd_native.node (see native/netlink/).
  # node-addon-api with C++ exceptions enabled (node_addon_api_except); N-API version 8.
  'variables': {
    # `node-gyp rebuild -- -Dsanitize=address` builds an AddressSanitizer variant for tests.
    'sanitize%': '',
  },
  'targets': [
    {
      'target_name': 'triggerd_native',
      'sources': [
        'native/netlink/addon.cc',
        'native/netlink/peer_credentials.cc',
        'native/netlink/system_error.cc',
        'native/netlink/uevent_fd.cc',
        'native/netlink/uevent_socket.cc',
        # The uv_poll watching every socket-like object shares.
        'native/common/fd_poller.cc',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_spawn',
      # Every .cc file in native/spawn/.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/spawn\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/spawn/\' + f).join(\' \')")',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_notify',
      # Every .cc file in native/notify/.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/notify\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/notify/\' + f).join(\' \')")',
        # The uv_poll watching every socket-like object shares.
        'native/common/fd_poller.cc',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_blkid',
      # Every .cc file in native/blkid/.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/blkid\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/blkid/\' + f).join(\' \')")',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      # libblkid.so.1 is dlopen()ed at run time (its headers may be missing); -ldl for glibc < 2.34.
      'libraries': ['-ldl'],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_libmount',
      # Every .cc file in native/libmount/: mount/umount through libmount on the threadpool.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/libmount\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/libmount/\' + f).join(\' \')")',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      # libmount.so.1 is dlopen()ed at run time (its headers may be missing; where they are, the
      # declarations are checked against them); -ldl for glibc < 2.34.
      'libraries': ['-ldl'],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_inotify',
      # Every .cc file in native/inotify/.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/inotify\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/inotify/\' + f).join(\' \')")',
        # The uv_poll watching every socket-like object shares.
        'native/common/fd_poller.cc',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_devnode',
      # Every .cc file in native/devnode/: xattrs (SECLABEL) and the evdev EVIOCGABS ioctl.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/devnode\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/devnode/\' + f).join(\' \')")',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_socket',
      # Every .cc file in native/socket/: the fds of .socket units, accept, readiness watches.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/socket\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/socket/\' + f).join(\' \')")',
        # The uv_poll watching every socket-like object shares.
        'native/common/fd_poller.cc',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      # mq_open lives in librt before glibc 2.34 (an empty stub after).
      'libraries': ['-lrt'],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_fanotify',
      # Every .cc file in native/fanotify/: fanotify groups, marks, permission answers, handles.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/fanotify\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/fanotify/\' + f).join(\' \')")',
        # The uv_poll watching every socket-like object shares.
        'native/common/fd_poller.cc',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_mounts',
      # Every .cc file in native/mounts/: the POLLPRI watch on /proc/self/mountinfo.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/mounts\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/mounts/\' + f).join(\' \')")',
        # The uv_poll watching every socket-like object shares.
        'native/common/fd_poller.cc',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_autofs',
      # Every .cc file in native/autofs/: autofs mounts, their packet pipes, /dev/autofs ioctls.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/autofs\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/autofs/\' + f).join(\' \')")',
        # The uv_poll watching every socket-like object shares.
        'native/common/fd_poller.cc',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      # The expire runs on a thread of its own (std::thread).
      'libraries': ['-lpthread'],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter', '-pthread'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_timerfd',
      # Every .cc file in native/timerfd/: the wall-clock change watch (TFD_TIMER_CANCEL_ON_SET)
      # and the three clocks read together.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/timerfd\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/timerfd/\' + f).join(\' \')")',
        # The uv_poll watching every socket-like object shares.
        'native/common/fd_poller.cc',
        'native/common/js_calls.cc',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        # While a worker is terminated, a failing call must become a C++ exception we can drop,
        # not a fatal error inside node-addon-api's Error constructor.
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
    {
      'target_name': 'triggerd_reexec',
      # Every .cc file in native/reexec/: execve of the daemon itself, FD_CLOEXEC on carried fds,
      # pidfd_open/pidfd_getfd/waitid(P_PIDFD) for processes adopted after a re-exec or a crash.
      'sources': [
        '<!@(node -p "require(\'fs\').readdirSync(\'native/reexec\').filter(f => f.endsWith(\'.cc\')).map(f => \'native/reexec/\' + f).join(\' \')")',
      ],
      'dependencies': [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      ],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'conditions': [
        ["sanitize!=''", {
          'cflags_cc': ['-fsanitize=<(sanitize)', '-fno-omit-frame-pointer', '-g', '-O1'],
          'ldflags': ['-fsanitize=<(sanitize)'],
        }],
      ],
    },
  ],
}
