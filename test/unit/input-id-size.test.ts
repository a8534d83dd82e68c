// input_id's ID_INPUT_WIDTH_MM/HEIGHT_MM: decoding `struct input_absinfo`, udev's abs_size_mm()
// arithmetic, and when the builtin asks the event node at all (eventN of a device with absolute
// X/Y axes), with an in-memory host standing in for sysfs and the EVIOCGABS ioctl.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BuiltinDevice, BuiltinHost } from '../../src/devices/builtins/builtin-types';
import {
  absSizeMm,
  inputId,
  parseAbsInfo,
  surfaceSizeProperties,
  type AbsInfo,
} from '../../src/devices/builtins/input-id';

function absinfo(over: Partial<AbsInfo>): AbsInfo {
  return { value: 0, minimum: 0, maximum: 0, fuzz: 0, flat: 0, resolution: 0, ...over };
}

function bytes(a: AbsInfo): Buffer {
  const b = Buffer.alloc(24);
  [a.value, a.minimum, a.maximum, a.fuzz, a.flat, a.resolution].forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

describe('surface size', () => {
  it('parseAbsInfo decodes six __s32 in host order, refuses a wrong size', () => {
    const a = absinfo({ value: -3, minimum: 1266, maximum: 5676, fuzz: 8, flat: 0, resolution: 42 });
    assert.deepEqual(parseAbsInfo(bytes(a), 'LE'), a);
    const be = Buffer.alloc(24);
    be.writeInt32BE(7, 8);
    assert.equal(parseAbsInfo(be, 'BE')?.maximum, 7);
    assert.equal(parseAbsInfo(Buffer.alloc(23)), undefined);
    assert.equal(parseAbsInfo(Buffer.alloc(28)), undefined);
  });

  it('absSizeMm is C int division: (max - min) / resolution, truncated toward zero', () => {
    // A Synaptics touchpad: x 1266..5676 at 42 units/mm, y 1096..4758 at 68 units/mm.
    assert.equal(absSizeMm({ minimum: 1266, maximum: 5676, resolution: 42 }), 105);
    assert.equal(absSizeMm({ minimum: 1096, maximum: 4758, resolution: 68 }), 53);
    assert.equal(absSizeMm({ minimum: 0, maximum: 9, resolution: 10 }), 0);
    assert.equal(absSizeMm({ minimum: 10, maximum: 0, resolution: 3 }), -3);
    // The subtraction wraps as a 32-bit int does on every Linux compiler.
    assert.equal(absSizeMm({ minimum: -2147483648, maximum: 2147483647, resolution: 1 }), -1);
  });

  it('both sizes, or neither when either axis has no resolution', () => {
    const x = absinfo({ minimum: 0, maximum: 1000, resolution: 10 });
    const y = absinfo({ minimum: 0, maximum: 600, resolution: 10 });
    assert.deepEqual(
      [...surfaceSizeProperties(x, y)],
      [
        ['ID_INPUT_WIDTH_MM', '100'],
        ['ID_INPUT_HEIGHT_MM', '60'],
      ],
    );
    assert.equal(surfaceSizeProperties(x, { ...y, resolution: 0 }).size, 0);
    assert.equal(surfaceSizeProperties({ ...x, resolution: -1 }, y).size, 0);
  });
});

/** An input device and its eventN child, in memory; readAbsInfo is recorded. */
function fakeHost(caps: Record<string, string>, abs?: (devnode: string, axis: number) => Buffer) {
  const inputPath = '/sys/devices/platform/i8042/serio1/input/input5';
  const attrs = new Map<string, string>([['id/bustype', '0011']]);
  for (const [k, v] of Object.entries(caps)) attrs.set(k === 'properties' ? k : `capabilities/${k}`, v);
  const device = (syspath: string, sysname: string, devname?: string): BuiltinDevice => {
    const d: BuiltinDevice = {
      syspath,
      devpath: syspath.slice(4),
      subsystem: 'input',
      sysname,
      properties: new Map(),
    };
    if (devname !== undefined) d.devname = devname;
    return d;
  };
  const input = device(inputPath, 'input5');
  const event = device(`${inputPath}/event5`, 'event5', '/dev/input/event5');
  const mouse = device(`${inputPath}/mouse1`, 'mouse1', '/dev/input/mouse1');
  const calls: [string, number][] = [];
  const host: BuiltinHost = {
    readAttr: (syspath, name) => (syspath === inputPath ? attrs.get(name) : undefined),
    readAttrBytes: () => undefined,
    parent: (syspath) => (syspath.startsWith(`${inputPath}/`) ? input : undefined),
    deviceBySubsystemSysname: () => undefined,
    childNames: () => undefined,
  };
  if (abs !== undefined) {
    host.readAbsInfo = (devnode, axis) => {
      calls.push([devnode, axis]);
      return abs(devnode, axis);
    };
  }
  return { host, input, event, mouse, calls };
}

function props(r: ReturnType<typeof inputId>): Record<string, string> {
  assert.ok(r.ok);
  return Object.fromEntries(r.properties);
}

// Capability strings of a real Synaptics touchpad (see test/unit/builtins.test.ts).
const TOUCHPAD = { ev: 'b', key: 'e520 30000 0 0 0 0', abs: '660800011000003', properties: '5' };
const KEYBOARD = { ev: '120013', key: '402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe' };
const synaptics = (_devnode: string, axis: number): Buffer =>
  bytes(
    axis === 0
      ? absinfo({ minimum: 1266, maximum: 5676, resolution: 42 })
      : absinfo({ minimum: 1096, maximum: 4758, resolution: 68 }),
  );

describe('input_id sizes', () => {
  it('a touchpad event node gets its size from EVIOCGABS(ABS_X) and (ABS_Y)', () => {
    const f = fakeHost(TOUCHPAD, synaptics);
    assert.deepEqual(props(inputId(['input_id'], f.event, f.host)), {
      ID_INPUT: '1',
      ID_INPUT_TOUCHPAD: '1',
      ID_INPUT_WIDTH_MM: '105',
      ID_INPUT_HEIGHT_MM: '53',
    });
    assert.deepEqual(f.calls, [
      ['/dev/input/event5', 0],
      ['/dev/input/event5', 1],
    ]);
  });

  it('only eventN nodes are asked (udev: sysname "event*"), not the input device or mouseN', () => {
    const f = fakeHost(TOUCHPAD, synaptics);
    assert.equal(props(inputId(['input_id'], f.input, f.host)).ID_INPUT_WIDTH_MM, undefined);
    assert.equal(props(inputId(['input_id'], f.mouse, f.host)).ID_INPUT_WIDTH_MM, undefined);
    assert.deepEqual(f.calls, []);
  });

  it('devices without absolute X/Y axes are not asked at all', () => {
    const f = fakeHost(KEYBOARD, () => assert.fail('no ioctl for a keyboard'));
    assert.deepEqual(props(inputId(['input_id'], f.event, f.host)), {
      ID_INPUT: '1',
      ID_INPUT_KEY: '1',
      ID_INPUT_KEYBOARD: '1',
    });
  });

  it('a failing ioctl, a short answer, no resolution or no addon just leave the sizes out', () => {
    const cases: (((d: string, a: number) => Buffer) | undefined)[] = [
      () => {
        throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      },
      () => Buffer.alloc(8),
      (_d, a) => bytes(absinfo({ maximum: 100, resolution: a === 0 ? 10 : 0 })),
      undefined,
    ];
    for (const abs of cases) {
      const f = fakeHost(TOUCHPAD, abs);
      assert.deepEqual(props(inputId(['input_id'], f.event, f.host)), {
        ID_INPUT: '1',
        ID_INPUT_TOUCHPAD: '1',
      });
    }
  });
});
