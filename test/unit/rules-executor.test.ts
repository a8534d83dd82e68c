// rules-executor: a table of cases (description, fixture device, rules, expected result) run with
// a fake RulesHost over small in-memory sysfs trees: a loop device, a USB disk with its parents,
// a network interface and an input device.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules } from '../../src/devices/rules/rules-compiler';
import { runRules } from '../../src/devices/rules/rules-executor';
import type { RulesResult } from '../../src/devices/rules/rules-result';
import type { DeviceRecord, UeventAction } from '../../src/devices/types';
import { FakeRulesHost, type FixtureDevice } from '../helpers/fake-rules-host';

const LOOP0 = '/devices/virtual/block/loop0';
const USB_DEV = '/devices/pci0000:00/0000:00:14.0/usb1/1-1';
const USB_IF = `${USB_DEV}/1-1:1.0`;
const SCSI = `${USB_IF}/host2/target2:0:0/2:0:0:0`;
const SDB = `${SCSI}/block/sdb`;
const ETH0 = '/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0';
const EVENT0 = '/devices/platform/i8042/serio0/input/input0/event0';

const TREE: FixtureDevice[] = [
  { devpath: '/devices/virtual/dmi/id', subsystem: 'dmi', attrs: { modalias: 'dmi:bvnSeaBIOS:\n' } },
  {
    devpath: LOOP0,
    subsystem: 'block',
    devtype: 'disk',
    devname: '/dev/loop0',
    major: 7,
    minor: 0,
    attrs: { size: '2048\n', ro: '0\n', 'loop/backing_file': '/tmp/img\n' },
    uevent: { DISKSEQ: '3167' },
  },
  { devpath: '/devices/pci0000:00', attrs: {} },
  {
    devpath: '/devices/pci0000:00/0000:00:14.0',
    subsystem: 'pci',
    driver: 'xhci_hcd',
    attrs: { vendor: '0x8086\n' },
  },
  {
    devpath: '/devices/pci0000:00/0000:00:14.0/usb1',
    subsystem: 'usb',
    devtype: 'usb_device',
    driver: 'usb',
    attrs: { idVendor: '1d6b\n', idProduct: '0002\n' },
  },
  {
    devpath: USB_DEV,
    subsystem: 'usb',
    devtype: 'usb_device',
    driver: 'usb',
    devname: '/dev/bus/usb/001/002',
    attrs: { idVendor: '0951\n', idProduct: '1666\n', serial: 'ABC123\n', product: 'DataTraveler 3.0\n' },
    tags: ['seat'],
    db: { ID_VENDOR: 'Kingston' },
  },
  {
    devpath: USB_IF,
    subsystem: 'usb',
    devtype: 'usb_interface',
    driver: 'usb-storage',
    attrs: { bInterfaceNumber: '00\n', bInterfaceClass: '08\n' },
    uevent: { DRIVER: 'usb-storage' },
  },
  { devpath: `${USB_IF}/host2`, subsystem: 'scsi', devtype: 'scsi_host' },
  { devpath: `${USB_IF}/host2/target2:0:0`, subsystem: 'scsi', devtype: 'scsi_target' },
  {
    devpath: SCSI,
    subsystem: 'scsi',
    devtype: 'scsi_device',
    driver: 'sd',
    attrs: { vendor: 'Kingston', model: 'DataTraveler 3.0 ', type: '0' },
    db: { ID_SCSI: '1', ID_VENDOR: 'Kingston', ID_MODEL: 'DT', OTHER: 'x' },
  },
  {
    devpath: SDB,
    subsystem: 'block',
    devtype: 'disk',
    devname: '/dev/sdb',
    major: 8,
    minor: 16,
    attrs: { removable: '1\n', size: '30031872\n' },
  },
  { devpath: '/devices/pci0000:00/0000:00:03.0', subsystem: 'pci', driver: 'virtio-pci' },
  { devpath: '/devices/pci0000:00/0000:00:03.0/virtio0', subsystem: 'virtio', driver: 'virtio_net' },
  {
    devpath: ETH0,
    subsystem: 'net',
    attrs: { address: '52:54:00:12:34:56\n', type: '1\n' },
    uevent: { INTERFACE: 'eth0', IFINDEX: '2' },
  },
  { devpath: '/devices/platform/i8042', subsystem: 'platform', driver: 'i8042' },
  {
    devpath: '/devices/platform/i8042/serio0',
    subsystem: 'serio',
    driver: 'atkbd',
    attrs: { description: 'i8042 KBD port' },
  },
  {
    devpath: '/devices/platform/i8042/serio0/input/input0',
    subsystem: 'input',
    attrs: { name: 'AT Translated Set 2 keyboard\n', phys: 'isa0060/serio0/input0\n' },
    devname: undefined,
  },
  { devpath: EVENT0, subsystem: 'input', devname: '/dev/input/event0', major: 13, minor: 64 },
];

interface Expect {
  /** undefined value: the property must be absent. */
  properties?: Record<string, string | undefined>;
  tags?: string[];
  devlinks?: string[];
  owner?: string;
  group?: string;
  mode?: number;
  name?: string;
  run?: string[];
  attrWrites?: [string, string][];
  sysctlWrites?: [string, string][];
  options?: string[];
  linkPriority?: number;
  seclabels?: Record<string, string>;
  /** `line severity code` of each diagnostic, in order. */
  diagnostics?: string[];
  /** Host calls that must have happened (prefix match), e.g. 'program /lib/udev/x'. */
  calls?: string[];
}

interface ExecCase {
  description: string;
  device: string;
  action?: UeventAction;
  extra?: Record<string, string>;
  record?: DeviceRecord;
  rules: string;
  setup?: (host: FakeRulesHost) => void;
  expect: Expect;
}

const words = (): { exitCode: number; stdout: string } => ({ exitCode: 0, stdout: 'one two  three\n' });

const CASES: ExecCase[] = [
  // Match keys.
  {
    description: 'ACTION == and !=',
    device: LOOP0,
    action: 'change',
    rules: 'ACTION=="change", ENV{A}="1"\nACTION!="change", ENV{B}="1"\nACTION=="add|change", ENV{C}="1"',
    expect: { properties: { A: '1', B: undefined, C: '1' } },
  },
  {
    description: 'DEVPATH glob crosses /',
    device: SDB,
    rules: 'DEVPATH=="/devices/pci*/block/sd?", ENV{D}="1"\nDEVPATH!="/devices/virtual/*", ENV{E}="1"',
    expect: { properties: { D: '1', E: '1' } },
  },
  {
    description: 'KERNEL alternatives, classes, negated classes',
    device: LOOP0,
    rules:
      'KERNEL=="sd*|loop[0-9]", ENV{K1}="1"\nKERNEL=="loop[!0]", ENV{K2}="1"\nKERNEL=="loop[^1-9]", ENV{K3}="1"\nKERNEL=="lo?p*", ENV{K4}="1"\nKERNEL=="LOOP0", ENV{K5}="1"',
    expect: { properties: { K1: '1', K2: undefined, K3: '1', K4: '1', K5: undefined } },
  },
  {
    description: 'SUBSYSTEM and DRIVER of the event device',
    device: USB_IF,
    action: 'bind',
    rules: 'SUBSYSTEM=="usb", DRIVER=="usb-storage", ENV{S}="1"\nDRIVER=="", ENV{NODRV}="1"',
    expect: { properties: { S: '1', NODRV: undefined } },
  },
  {
    description: 'ATTR match strips trailing whitespace; a missing attribute fails even with !=',
    device: SDB,
    rules:
      'ATTR{removable}=="1", ENV{R}="1"\nATTR{missing}!="x", ENV{M}="1"\nATTR{size}=="3*", ATTR{removable}!="0", ENV{S}="1"',
    expect: { properties: { R: '1', M: undefined, S: '1' } },
  },
  {
    description: 'ATTR name with substitution and ../ path',
    device: USB_IF,
    rules: 'ATTR{../idVendor}=="0951", ENV{V}="1"\nATTR{%k/x}=="*", ENV{W}="1"',
    expect: { properties: { V: '1', W: undefined } },
  },
  {
    description: 'ATTR{[subsystem/sysname]attr} reads another device',
    device: LOOP0,
    rules: 'ATTR{[dmi/id]modalias}=="dmi:bvnSeaBIOS:", ENV{DMI}="$attr{[dmi/id]modalias}"',
    expect: { properties: { DMI: 'dmi:bvnSeaBIOS:' } },
  },
  {
    description: 'parent keys: all must match on the same parent; $attr falls back to it; $id $driver',
    device: SDB,
    rules: [
      'SUBSYSTEMS=="usb", ATTRS{idVendor}=="0951", ATTRS{serial}=="?*", ENV{SER}="$attr{serial}"',
      'SUBSYSTEMS=="scsi", ATTRS{idVendor}=="0951", ENV{WRONG}="1"',
      'KERNELS=="1-1:1.0", DRIVERS=="usb-storage", ENV{ID}="$id $driver %b"',
      'SUBSYSTEMS=="block", KERNELS=="sdb", ENV{SELF}="$id"',
      'DRIVERS=="nope", ENV{NOPE}="1"',
    ].join('\n'),
    expect: {
      properties: {
        SER: 'ABC123',
        WRONG: undefined,
        ID: '1-1:1.0 usb-storage 1-1:1.0',
        SELF: 'sdb',
        NOPE: undefined,
      },
    },
  },
  {
    description: 'ATTRS trailing whitespace, != on a parent, TAGS on a parent',
    device: SDB,
    rules:
      'ATTRS{model}=="DataTraveler 3.0", ENV{MODEL}="1"\nATTRS{type}!="5", SUBSYSTEMS=="scsi", ENV{T}="1"\nTAGS=="seat", ENV{SEAT}="$id"',
    expect: { properties: { MODEL: '1', T: '1', SEAT: '1-1' } },
  },
  {
    description: 'SYSCTL match and assignment',
    device: ETH0,
    setup: (h) => h.sysctls.set('net.ipv4.ip_forward', '1\n'),
    rules:
      'SYSCTL{net/ipv4/ip_forward}=="1", SYSCTL{net.ipv6.conf.$name.disable_ipv6}="1"\nSYSCTL{kernel.nope}=="*", ENV{X}="1"',
    expect: { sysctlWrites: [['net.ipv6.conf.eth0.disable_ipv6', '1']], properties: { X: undefined } },
  },
  {
    description: 'TAG +=, -=, =, and TAG== match',
    device: LOOP0,
    rules:
      'TAG+="a", TAG+="b", TAG+="c"\nTAG-="a"\nTAG=="b", ENV{HASB}="1"\nTAG=="a", ENV{HASA}="1"\nTAG=="z", TAG="only"',
    expect: { tags: ['b', 'c'], properties: { HASB: '1', HASA: undefined } },
  },
  {
    description: 'TAG= resets; an invalid tag name is reported',
    device: LOOP0,
    rules: 'TAG+="a"\nTAG="b"\nTAG+="bad:tag"',
    expect: { tags: ['b'], diagnostics: ['3 error ERR_RULE_VALUE'] },
  },
  {
    description: 'TEST relative, absolute, negated, with mode',
    device: LOOP0,
    setup: (h) => {
      h.paths.set('/etc/ro', 0o444);
      h.paths.set('/etc/rw', 0o644);
    },
    rules:
      'TEST=="loop/backing_file", ENV{T1}="1"\nTEST!="nope", ENV{T2}="1"\nTEST{0200}=="/etc/ro", ENV{T3}="1"\nTEST{0200}=="/etc/rw", ENV{T4}="1"\nTEST=="/sys$devpath/size", ENV{T5}="1"',
    expect: { properties: { T1: '1', T2: '1', T3: undefined, T4: '1', T5: '1' } },
  },
  {
    description: 'PROGRAM, RESULT, $result, %c{N}, %c{N+}',
    device: LOOP0,
    setup: (h) => h.programs.set('/lib/udev/words', words),
    rules:
      'PROGRAM=="words %k", RESULT=="one *", ENV{W1}="%c{1}", ENV{W3}="%c{3}", ENV{W2P}="%c{2+}", ENV{ALL}="$result", ENV{W9}="%c{9}"',
    expect: {
      properties: { W1: 'one', W3: 'three', W2P: 'two three', ALL: 'one two  three', W9: undefined },
      calls: ['program /lib/udev/words loop0'],
    },
  },
  {
    description: 'PROGRAM= is a condition; failure skips the rule; != inverts',
    device: LOOP0,
    setup: (h) => h.programs.set('/bin/false', () => ({ exitCode: 1, stdout: '' })),
    rules: 'PROGRAM="/bin/false", ENV{X}="1"\nPROGRAM!="/bin/false", ENV{Y}="1"\nRESULT=="", ENV{Z}="1"',
    expect: { properties: { X: undefined, Y: '1', Z: '1' } },
  },
  {
    description: 'PROGRAM timeout and a throwing runner become diagnostics',
    device: LOOP0,
    setup: (h) => {
      h.programs.set('/bin/slow', () => ({ exitCode: -1, stdout: '', timedOut: true }));
      h.programs.set('/bin/boom', () => {
        throw new Error('spawn failed');
      });
    },
    rules: 'PROGRAM=="/bin/slow", ENV{X}="1"\n\nPROGRAM=="/bin/boom", ENV{Y}="1"',
    expect: {
      properties: { X: undefined, Y: undefined },
      diagnostics: ['1 error ERR_RULE_PROGRAM', '3 error ERR_RULE_PROGRAM'],
    },
  },
  {
    description: 'PROGRAM argv keeps quotes together; $$ and %% unescape',
    device: LOOP0,
    setup: (h) =>
      h.programs.set('/bin/sh', (argv) => ({ exitCode: 0, stdout: argv.slice(1).join(',') + '\n' })),
    rules: `PROGRAM=="/bin/sh -c 'echo $$X %%d' \\"a b\\"", ENV{OUT}="$result"`,
    expect: { properties: { OUT: '-c,echo $X %d,a b' } },
  },
  {
    description: 'ENV matches: empty is unset, ?* is non-empty',
    device: LOOP0,
    rules:
      'ENV{NOPE}=="", ENV{E1}="1"\nENV{DISKSEQ}=="?*", ENV{E2}="1"\nENV{DEVTYPE}!="disk", ENV{E3}="1"\nENV{NOPE}=="?*", ENV{E4}="1"\nENV{DEVTYPE}=="partition|", ENV{E5}="1"',
    expect: { properties: { E1: '1', E2: '1', E3: undefined, E4: undefined, E5: undefined } },
  },
  {
    description: 'CONST{arch} and CONST{virt}',
    device: LOOP0,
    rules: 'CONST{arch}=="x86-64", CONST{virt}!="none", ENV{C}="1"\nCONST{virt}=="none", ENV{D}="1"',
    expect: { properties: { C: '1', D: undefined } },
  },
  // IMPORT.
  {
    description: 'IMPORT{program} sets properties from KEY=VALUE output and gets the environment',
    device: LOOP0,
    setup: (h) =>
      h.programs.set('/lib/udev/probe', (_argv, env) => ({
        exitCode: 0,
        stdout: `# comment\nA=1\nB='two words'\nDEV=${env.get('DEVNAME') ?? ''}\nHIDDEN=${env.get('.H') ?? 'none'}\nbad line\n`,
      })),
    rules:
      'ENV{.H}="x"\nIMPORT{program}="probe --export $devnode", ENV{OK}="1"\nIMPORT{program}=="missing", ENV{NO}="1"',
    expect: {
      properties: {
        A: '1',
        B: 'two words',
        DEV: '/dev/loop0',
        HIDDEN: 'none',
        OK: '1',
        NO: undefined,
        '.H': undefined,
      },
      calls: ['program /lib/udev/probe --export /dev/loop0'],
    },
  },
  {
    description: 'IMPORT{builtin} with quoted argv; run-once builtins are called once; failure skips',
    device: SDB,
    setup: (h) => {
      h.builtins.set('path_id', () => new Map([['ID_PATH', 'pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0']]));
      h.builtins.set('hwdb', (argv) => new Map([['HWDB_ARG', argv[1] ?? '']]));
    },
    rules: [
      'IMPORT{builtin}="path_id", ENV{P1}="1"',
      'IMPORT{builtin}="path_id", ENV{P2}="1"',
      'SUBSYSTEMS=="usb", ATTRS{idVendor}=="?*", IMPORT{builtin}="hwdb \'usb:v$attr{idVendor}p$attr{idProduct}\'"',
      'IMPORT{builtin}="usb_id", ENV{U}="1"',
      'IMPORT{program}="path_id", ENV{P3}="1"',
    ].join('\n'),
    expect: {
      properties: {
        ID_PATH: 'pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0',
        P1: '1',
        P2: '1',
        P3: '1',
        HWDB_ARG: 'usb:v0951p1666',
        U: undefined,
      },
      calls: ['builtin path_id', 'builtin hwdb usb:v0951p1666', 'builtin usb_id'],
    },
  },
  {
    description: 'IMPORT{file}, IMPORT{cmdline}',
    device: LOOP0,
    setup: (h) => {
      h.files.set('/run/x.env', 'F1=a\nF2="b c"\n');
      h.cmdlineText = 'quiet root=/dev/sda1 nomodeset';
    },
    rules:
      'IMPORT{file}="/run/x.env"\nIMPORT{file}="/run/missing", ENV{FM}="1"\nIMPORT{cmdline}="nomodeset"\nIMPORT{cmdline}="root"\nIMPORT{cmdline}="splash", ENV{SPL}="1"',
    expect: {
      properties: { F1: 'a', F2: 'b c', FM: undefined, nomodeset: '1', root: '/dev/sda1', SPL: undefined },
    },
  },
  {
    description: 'IMPORT{db} from the record before the event',
    device: LOOP0,
    action: 'change',
    record: {
      devpath: LOOP0,
      subsystem: 'block',
      properties: new Map([['SYSTEMD_READY', '0']]),
      tags: new Set(['systemd']),
      devlinks: [],
      seqnum: 1,
      action: 'add',
    },
    rules: 'IMPORT{db}="SYSTEMD_READY"\nIMPORT{db}="NOPE", ENV{N}="1"',
    expect: { properties: { SYSTEMD_READY: '0', N: undefined }, tags: [] },
  },
  {
    description: 'IMPORT{parent} copies matching keys from the parent database',
    device: SDB,
    rules: 'IMPORT{parent}="ID_*"\nIMPORT{parent}=="ID_S*|OTHER", ENV{OK}="1"',
    expect: { properties: { ID_SCSI: '1', ID_VENDOR: 'Kingston', ID_MODEL: 'DT', OTHER: 'x', OK: '1' } },
  },
  {
    description: 'IMPORT{parent} without a parent fails',
    device: '/devices/pci0000:00',
    rules: 'IMPORT{parent}="*", ENV{P}="1"',
    expect: { properties: { P: undefined } },
  },
  // ENV assignment.
  {
    description: 'ENV: hidden .X not exported; += appends with a space; ="" deletes; +="" no-op',
    device: LOOP0,
    rules: 'ENV{.H}="hid"\nENV{V}="$env{.H}"\nENV{L}="a"\nENV{L}+="b"\nENV{L}+=""\nENV{NEW}+="x"\nENV{V}=""',
    expect: { properties: { '.H': undefined, V: undefined, L: 'a b', NEW: 'x' } },
  },
  {
    description: 'ENV with string_escape=replace sanitises',
    device: LOOP0,
    rules: 'OPTIONS+="string_escape=replace", ENV{X}="a b/c"',
    expect: { properties: { X: 'a_b_c' }, options: ['string_escape=replace'] },
  },
  // SYMLINK.
  {
    description: 'SYMLINK: += splits on whitespace, -= removes, DEVLINKS property',
    device: LOOP0,
    rules: 'SYMLINK+="disk/a disk/b"\nSYMLINK+="disk/c"\nSYMLINK-="disk/b"\nSYMLINK+="disk/a"',
    expect: { devlinks: ['disk/a', 'disk/c'], properties: { DEVLINKS: '/dev/disk/a /dev/disk/c' } },
  },
  {
    description: 'SYMLINK: = resets, := is final',
    device: LOOP0,
    rules: 'SYMLINK+="one"\nSYMLINK="two"\nSYMLINK:="three"\nSYMLINK+="four"\nSYMLINK="five"',
    expect: { devlinks: ['three'] },
  },
  {
    description: 'SYMLINK: whitespace inside a substituted value becomes _, unsafe chars too',
    device: EVENT0,
    rules:
      'KERNEL=="event*", SUBSYSTEMS=="input", ATTRS{name}=="AT*", SYMLINK+="input/by-name/$attr{name}"\nENV{W}="x*y"\nSYMLINK+="odd/$env{W}!"',
    expect: { devlinks: ['input/by-name/AT_Translated_Set_2_keyboard', 'odd/x_y_'] },
  },
  {
    description: 'SYMLINK with string_escape=none keeps the value as substituted',
    device: LOOP0,
    rules: 'OPTIONS+="string_escape=none"\nENV{W}="a b"\nSYMLINK+="x/$env{W}"',
    expect: { devlinks: ['x/a', 'b'] },
  },
  {
    description: 'SYMLINK== and no DEVLINKS without links',
    device: LOOP0,
    rules:
      'SYMLINK+="disk/by-id/x"\nSYMLINK=="disk/by-id/*", ENV{HAS}="1"\nSYMLINK-="disk/by-id/x"\nSYMLINK!="disk/*", ENV{NONE}="1"',
    expect: { devlinks: [], properties: { HAS: '1', NONE: '1', DEVLINKS: undefined } },
  },
  // Ownership.
  {
    description: 'OWNER, GROUP, MODE with := final and substitution',
    device: SDB,
    rules:
      'OWNER="root", GROUP="disk", MODE="0660"\nGROUP:="plugdev", MODE:="0660"\nGROUP="nope", MODE="0600", OWNER="$kernel"',
    setup: () => undefined,
    expect: { owner: 'sdb', group: 'plugdev', mode: 0o660 },
  },
  {
    description: 'MODE that is not octal after substitution is reported and ignored',
    device: SDB,
    rules: 'MODE="0640"\nMODE="0$env{DEVTYPE}"',
    expect: { mode: 0o640, diagnostics: ['2 error ERR_RULE_VALUE'] },
  },
  {
    description: 'SECLABEL',
    device: SDB,
    rules: 'SECLABEL{selinux}="system_u:object_r:$kernel_t"',
    expect: { seclabels: { selinux: 'system_u:object_r:sdb_t' } },
  },
  // ATTR writes, RUN, OPTIONS.
  {
    description: 'ATTR assignment records writes in order, with [subsystem/sysname] paths',
    device: USB_DEV,
    rules: 'ATTR{power/control}="auto"\nATTR{[dmi/id]x}="$attr{idVendor}"\nATTR{[nope/x]y}="1"',
    expect: {
      attrWrites: [
        [`/sys${USB_DEV}/power/control`, 'auto'],
        ['/sys/devices/virtual/dmi/id/x', '0951'],
      ],
      diagnostics: ['3 warning ERR_RULE_VALUE'],
    },
  },
  {
    description: 'RUN: += appends, = resets, := final, RUN{builtin}',
    device: LOOP0,
    rules:
      'RUN+="/bin/a $kernel"\nRUN="/bin/b"\nRUN{builtin}+="kmod load loop"\nRUN:="/bin/c %M:%m"\nRUN+="/bin/d"\nRUN="/bin/e"',
    expect: { run: ['program:/bin/c 7:0'] },
  },
  {
    description: 'RUN keeps order of program and builtin entries',
    device: LOOP0,
    rules: 'RUN+="/bin/a"\nRUN{builtin}+="uaccess"\nRUN{program}+="/bin/b $env{DISKSEQ}"',
    expect: { run: ['program:/bin/a', 'builtin:uaccess', 'program:/bin/b 3167'] },
  },
  {
    description: 'OPTIONS: link_priority, watch/nowatch, db_persist, log_level, static_node',
    device: LOOP0,
    rules:
      'OPTIONS+="link_priority=-100"\nOPTIONS+="watch"\nOPTIONS+="nowatch"\nOPTIONS+="db_persist"\nOPTIONS+="log_level=debug"\nOPTIONS+="static_node=kvm"\nOPTIONS="link_priority=10"',
    expect: { linkPriority: 10, options: ['nowatch', 'db_persist', 'log_level=7', 'static_node=kvm'] },
  },
  // NAME.
  {
    description: 'NAME on a network interface, NAME== afterwards, := final, $name',
    device: ETH0,
    extra: { ID_NET_NAME: 'enp0s3' },
    rules:
      'NAME=="", ENV{ID_NET_NAME}!="", NAME:="$env{ID_NET_NAME}"\nNAME="other"\nNAME=="enp0s3", ENV{N}="$name"',
    expect: { name: 'enp0s3', properties: { N: 'enp0s3' } },
  },
  {
    description: 'NAME on a non-network device is ignored with a warning',
    device: LOOP0,
    rules: 'NAME="disk0"\nENV{N}="$name"',
    expect: { properties: { N: 'loop0' }, diagnostics: ['1 warning ERR_RULE_VALUE'] },
  },
  // GOTO / LABEL.
  {
    description: 'GOTO skips to its LABEL only when the rule matched',
    device: LOOP0,
    rules:
      'KERNEL=="sd*", GOTO="end"\nENV{A}="1"\nKERNEL=="loop*", GOTO="end"\nENV{B}="1"\nLABEL="end"\nENV{C}="1"',
    expect: { properties: { A: '1', B: undefined, C: '1' } },
  },
  {
    description: 'a LABEL line with tokens runs when reached by GOTO',
    device: LOOP0,
    rules: 'GOTO="x"\nENV{A}="1"\nLABEL="x", ENV{B}="1"',
    expect: { properties: { A: undefined, B: '1' } },
  },
  // Substitutions.
  {
    description: 'every substitution, long and short forms',
    device: LOOP0,
    rules: [
      'ENV{S1}="$kernel %k $number %n $devpath %p"',
      'ENV{S2}="$major %M $minor %m $root $sys %r %S"',
      'ENV{S3}="$devnode %N $name %D $$ %% $env{DISKSEQ} %E{DISKSEQ} $attr{size} %s{size} $sysfs{ro}"',
      'SYMLINK+="l1 l2"',
      'ENV{S4}="[$links] [$parent] [$id] [$driver] [$result] $unknown %q"',
    ].join('\n'),
    expect: {
      properties: {
        S1: `loop0 loop0 0 0 ${LOOP0} ${LOOP0}`,
        S2: '7 7 0 0 /dev /sys /dev /sys',
        S3: '/dev/loop0 /dev/loop0 loop0 loop0 $ % 3167 3167 2048 2048 0',
        S4: '[l1 l2] [] [] [] [] $unknown %q',
      },
    },
  },
  {
    description: '$parent is the parent node; the event DEVNAME is absolute',
    device: '/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0',
    rules: 'ENV{P}="$parent"',
    expect: { properties: { P: 'bus/usb/001/002' } },
  },
  {
    description: 'bad %c{} argument is a diagnostic',
    device: LOOP0,
    setup: (h) => h.programs.set('/lib/udev/words', words),
    rules: 'PROGRAM=="words", ENV{X}="%c{x}"',
    expect: { properties: { X: undefined }, diagnostics: ['1 warning ERR_RULE_SUBSTITUTION'] },
  },
  // Robustness.
  {
    description: 'a throwing host is a diagnostic, not an exception',
    device: SDB,
    setup: (h) => {
      h.readAttr = () => {
        throw new Error('EIO');
      };
    },
    rules: 'ATTR{size}=="*", ENV{A}="1"\nENV{B}="1"',
    expect: { properties: { A: undefined, B: '1' }, diagnostics: ['1 error ERR_RULE_HOST'] },
  },
  {
    description: 'remove: the rules see database properties and tags',
    device: LOOP0,
    action: 'remove',
    record: {
      devpath: LOOP0,
      subsystem: 'block',
      properties: new Map([['ID_FS_TYPE', 'ext4']]),
      tags: new Set(['systemd']),
      devlinks: [],
      seqnum: 1,
      action: 'change',
    },
    rules: 'ACTION=="remove", ENV{ID_FS_TYPE}=="ext4", TAG=="systemd", ENV{SEEN}="1"',
    expect: { properties: { SEEN: '1' }, tags: ['systemd'] },
  },
];

function describeDiag(r: RulesResult['diagnostics'][number]): string {
  return `${r.source?.line ?? 0} ${r.severity} ${r.code ?? ''}`;
}

async function runCase(c: ExecCase): Promise<{ result: RulesResult; host: FakeRulesHost }> {
  const host = new FakeRulesHost(TREE);
  c.setup?.(host);
  const compiled = compileRules([{ file: 'case.rules', text: c.rules }]);
  assert.deepEqual(
    compiled.diagnostics.filter((d) => d.severity === 'error'),
    [],
    'case rules must compile cleanly',
  );
  const result = await runRules(compiled, host.event(c.device, c.action ?? 'add', c.extra), c.record, host);
  return { result, host };
}

describe('rules-executor table', () => {
  for (const c of CASES) {
    test(c.description, async () => {
      const { result: r, host } = await runCase(c);
      const e = c.expect;
      for (const [k, v] of Object.entries(e.properties ?? {}))
        assert.equal(r.properties.get(k), v, `property ${k}`);
      if (e.tags !== undefined) assert.deepEqual([...r.tags].sort(), [...e.tags].sort());
      if (e.devlinks !== undefined) assert.deepEqual(r.devlinks, e.devlinks);
      if (e.owner !== undefined) assert.equal(r.owner, e.owner);
      if (e.group !== undefined) assert.equal(r.group, e.group);
      if (e.mode !== undefined) assert.equal(r.mode, e.mode);
      if (e.name !== undefined) assert.equal(r.name, e.name);
      if (e.run !== undefined)
        assert.deepEqual(
          r.run.map((x) => `${x.kind}:${x.command}`),
          e.run,
        );
      if (e.attrWrites !== undefined)
        assert.deepEqual(
          r.attrWrites.map((w) => [w.path, w.value]),
          e.attrWrites,
        );
      if (e.sysctlWrites !== undefined)
        assert.deepEqual(
          r.sysctlWrites.map((w) => [w.key, w.value]),
          e.sysctlWrites,
        );
      if (e.options !== undefined) assert.deepEqual([...r.options].sort(), [...e.options].sort());
      if (e.linkPriority !== undefined) assert.equal(r.linkPriority, e.linkPriority);
      if (e.seclabels !== undefined) assert.deepEqual(Object.fromEntries(r.seclabels), e.seclabels);
      assert.deepEqual(r.diagnostics.map(describeDiag), e.diagnostics ?? []);
      for (const d of r.diagnostics) assert.equal(d.source?.file, 'case.rules');
      for (const call of e.calls ?? []) {
        assert.ok(
          host.calls.some((x) => x.startsWith(call)),
          `expected host call '${call}' in ${JSON.stringify(host.calls)}`,
        );
      }
      if (c.description.startsWith('IMPORT{builtin}')) {
        assert.equal(
          host.calls.filter((x) => x === 'builtin path_id').length,
          1,
          'run-once builtin called once',
        );
      }
    });
  }

  test('RUN entries and attr writes keep the SourceRef of their token', async () => {
    const host = new FakeRulesHost(TREE);
    const compiled = compileRules([{ file: 'x.rules', text: '\nRUN+="/bin/a"\n  ATTR{x}="1"' }]);
    const r = await runRules(compiled, host.event(LOOP0), undefined, host);
    assert.deepEqual(r.run[0]?.source, { file: 'x.rules', line: 2, column: 1 });
    assert.deepEqual(r.attrWrites[0]?.source, { file: 'x.rules', line: 3, column: 3 });
  });
});
