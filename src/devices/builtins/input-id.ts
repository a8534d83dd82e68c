// IMPORT{builtin}="input_id": what kind of input device this is (ID_INPUT_KEYBOARD, _MOUSE,
// _TOUCHPAD, ...), decided from the kernel's capability bitmasks in sysfs exactly as udev's
// input_id builtin decides it. The bitmasks are read as the kernel prints them: space-separated
// hex words, most significant first, each one C `long` (64 bits here) wide. For eventN nodes
// it adds the size of the touch surface (ID_INPUT_WIDTH_MM/HEIGHT_MM) from the EVIOCGABS ioctl,
// asked only of devices with absolute X/Y axes: for the others the kernel has no axis to report.
import os = require('node:os');
import { succeed } from './builtin-errors';
import type { Builtin, BuiltinDevice, BuiltinHost, BuiltinResult } from './builtin-types';
import { ancestorWith } from './device-chain';

// <linux/input-event-codes.h>
const EV_KEY = 0x01;
const EV_REL = 0x02;
const EV_SW = 0x05;
const EV_MAX = 0x1f;
const ABS_X = 0x00;
const ABS_Y = 0x01;
const ABS_Z = 0x02;
const ABS_RX = 0x03;
const ABS_PRESSURE = 0x18;
const ABS_MT_SLOT = 0x2f;
const ABS_MT_POSITION_X = 0x35;
const ABS_MT_POSITION_Y = 0x36;
const ABS_MAX = 0x3f;
const REL_X = 0x00;
const REL_Y = 0x01;
const REL_HWHEEL = 0x06;
const REL_WHEEL = 0x08;
const REL_MAX = 0x0f;
const KEY_MAX = 0x2ff;
const BTN_MISC = 0x100;
const BTN_0 = 0x100;
const BTN_MOUSE = 0x110;
const BTN_JOYSTICK = 0x120;
const BTN_DIGI = 0x140;
const BTN_TOOL_PEN = 0x140;
const BTN_TOOL_FINGER = 0x145;
const BTN_TOUCH = 0x14a;
const BTN_STYLUS = 0x14b;
const KEY_OK = 0x160;
const BTN_DPAD_UP = 0x220;
const BTN_DPAD_RIGHT = 0x223;
const KEY_ALS_TOGGLE = 0x230;
const BTN_TRIGGER_HAPPY1 = 0x2c0;
const BTN_TRIGGER_HAPPY40 = 0x2e7;
const INPUT_PROP_DIRECT = 0x01;
const INPUT_PROP_POINTING_STICK = 0x05;
const INPUT_PROP_ACCELEROMETER = 0x06;
const INPUT_PROP_MAX = 0x1f;
const BUS_I2C = 0x18;

const BITS_PER_LONG = 64;
const U64_MAX = (1n << 64n) - 1n;

/** A kernel bitmap of `unsigned long` words, word 0 holding bits 0..63. */
export class Bitmask {
  constructor(readonly words: bigint[]) {}

  test(bit: number): boolean {
    const word = this.words[Math.floor(bit / BITS_PER_LONG)] ?? 0n;
    return ((word >> BigInt(bit % BITS_PER_LONG)) & 1n) === 1n;
  }

  any(from: number, to: number): boolean {
    for (let bit = from; bit < to; bit++) if (this.test(bit)) return true;
    return false;
  }
}

/** safe_atolu_full(s, 16): strtoul with the whole word consumed and no overflow. */
function parseHexWord(word: string): bigint | undefined {
  const m = /^[ \t\n\r]*\+?(?:0[xX])?([0-9a-fA-F]+)$/.exec(word);
  if (m === null) return undefined;
  const value = BigInt(`0x${m[1]!}`);
  return value <= U64_MAX ? value : undefined;
}

/**
 * udev's get_cap_mask(): the words are taken from the right (least significant first); a word
 * that does not parse is skipped but still counts, and words past the array size are dropped.
 */
export function parseCapabilityMask(text: string | undefined, maxBit: number): Bitmask {
  const size = Math.floor(maxBit / BITS_PER_LONG) + 1;
  const words: bigint[] = new Array<bigint>(size).fill(0n);
  const parts = (text ?? '').split(' ').reverse();
  parts.forEach((part, i) => {
    const value = parseHexWord(part);
    if (value !== undefined && i < size) words[i] = value;
  });
  return new Bitmask(words);
}

interface Masks {
  ev: Bitmask;
  abs: Bitmask;
  rel: Bitmask;
  key: Bitmask;
  props: Bitmask;
}

function readMasks(host: BuiltinHost, device: BuiltinDevice): Masks {
  const read = (name: string, max: number) => parseCapabilityMask(host.readAttr(device.syspath, name), max);
  return {
    ev: read('capabilities/ev', EV_MAX),
    abs: read('capabilities/abs', ABS_MAX),
    rel: read('capabilities/rel', REL_MAX),
    key: read('capabilities/key', KEY_MAX),
    props: read('properties', INPUT_PROP_MAX),
  };
}

function readBustype(host: BuiltinHost, device: BuiltinDevice): number {
  const text = host.readAttr(device.syspath, 'id/bustype');
  const value = text === undefined ? undefined : parseHexWord(text);
  return value !== undefined && value <= 0xffffn ? Number(value) : 0;
}

/** Pointer-like devices; sets properties and says whether it was one. */
function testPointers(m: Masks, bustype: number, props: Map<string, string>): boolean {
  const hasKeys = m.ev.test(EV_KEY);
  const hasAbsCoordinates = m.abs.test(ABS_X) && m.abs.test(ABS_Y);
  const has3dCoordinates = hasAbsCoordinates && m.abs.test(ABS_Z);
  const isAccelerometer = m.props.test(INPUT_PROP_ACCELEROMETER) || (!hasKeys && has3dCoordinates);
  if (isAccelerometer) {
    props.set('ID_INPUT_ACCELEROMETER', '1');
    return true;
  }
  let isPointingStick = m.props.test(INPUT_PROP_POINTING_STICK);
  const hasStylus = m.key.test(BTN_STYLUS);
  const hasPen = m.key.test(BTN_TOOL_PEN);
  const fingerButNoPen = m.key.test(BTN_TOOL_FINGER) && !m.key.test(BTN_TOOL_PEN);
  const hasMouseButton = m.key.any(BTN_MOUSE, BTN_JOYSTICK);
  const hasRelCoordinates = m.ev.test(EV_REL) && m.rel.test(REL_X) && m.rel.test(REL_Y);
  let hasMtCoordinates = m.abs.test(ABS_MT_POSITION_X) && m.abs.test(ABS_MT_POSITION_Y);
  // A device claiming every abs axis is not really multi-touch.
  if (hasMtCoordinates && m.abs.test(ABS_MT_SLOT) && m.abs.test(ABS_MT_SLOT - 1)) hasMtCoordinates = false;
  const isDirect = m.props.test(INPUT_PROP_DIRECT);
  const hasTouch = m.key.test(BTN_TOUCH);
  const hasPadButtons = m.key.test(BTN_0) && hasStylus && !hasPen;

  // Joysticks may have only axes or only buttons. A mouse with more than 16 buttons runs into
  // the BTN_JOYSTICK range: the button just below it tells them apart.
  let hasJoystickAxesOrButtons = false;
  if (!m.key.test(BTN_JOYSTICK - 1)) {
    hasJoystickAxesOrButtons =
      m.key.any(BTN_JOYSTICK, BTN_DIGI) ||
      m.key.any(BTN_TRIGGER_HAPPY1, BTN_TRIGGER_HAPPY40 + 1) ||
      m.key.any(BTN_DPAD_UP, BTN_DPAD_RIGHT + 1);
  }
  if (!hasJoystickAxesOrButtons) hasJoystickAxesOrButtons = m.abs.any(ABS_RX, ABS_PRESSURE);

  let isMouse = false;
  let isTouchpad = false;
  let isTouchscreen = false;
  let isTablet = false;
  let isJoystick = false;
  if (hasAbsCoordinates) {
    if (hasStylus || hasPen) isTablet = true;
    else if (fingerButNoPen && !isDirect) isTouchpad = true;
    else if (hasMouseButton)
      isMouse = true; // VMware's USB mouse: abs axes, no touch button
    else if (hasTouch || isDirect) isTouchscreen = true;
    else if (hasJoystickAxesOrButtons) isJoystick = true;
  } else if (hasJoystickAxesOrButtons) {
    isJoystick = true;
  }
  if (hasMtCoordinates) {
    if (hasStylus || hasPen) isTablet = true;
    else if (fingerButNoPen && !isDirect) isTouchpad = true;
    else if (hasTouch || isDirect) isTouchscreen = true;
  }
  const isTabletPad = isTablet && hasPadButtons;
  if (
    !isTablet &&
    !isTouchpad &&
    !isJoystick &&
    hasMouseButton &&
    (hasRelCoordinates || !hasAbsCoordinates)
  ) {
    isMouse = true;
  }
  // There is no such thing as an i2c mouse.
  if (isMouse && bustype === BUS_I2C) isPointingStick = true;

  if (isPointingStick) props.set('ID_INPUT_POINTINGSTICK', '1');
  if (isMouse) props.set('ID_INPUT_MOUSE', '1');
  if (isTouchpad) props.set('ID_INPUT_TOUCHPAD', '1');
  if (isTouchscreen) props.set('ID_INPUT_TOUCHSCREEN', '1');
  if (isJoystick) props.set('ID_INPUT_JOYSTICK', '1');
  if (isTablet) props.set('ID_INPUT_TABLET', '1');
  if (isTabletPad) props.set('ID_INPUT_TABLET_PAD', '1');
  return isTablet || isMouse || isTouchpad || isTouchscreen || isJoystick || isPointingStick;
}

/** Key-like devices (KEY_* codes, not BTN_*). */
function testKey(m: Masks, props: Map<string, string>): boolean {
  if (!m.ev.test(EV_KEY)) return false;
  let found = m.key.words.slice(0, BTN_MISC / BITS_PER_LONG).some((word) => word !== 0n);
  if (!found) found = m.key.any(KEY_OK, BTN_DPAD_UP) || m.key.any(KEY_ALS_TOGGLE, BTN_TRIGGER_HAPPY1);
  if (found) props.set('ID_INPUT_KEY', '1');
  // The first 32 codes are ESC, the digits and Q to D: all of them (bar KEY_RESERVED) is a keyboard.
  if ((m.key.words[0]! & 0xfffffffen) === 0xfffffffen) {
    props.set('ID_INPUT_KEYBOARD', '1');
    return true;
  }
  return found;
}

/** `struct input_absinfo` (<linux/input.h>): one absolute axis as EVIOCGABS reports it. */
export interface AbsInfo {
  value: number;
  minimum: number;
  maximum: number;
  fuzz: number;
  flat: number;
  /** Units per mm for ABS_X/ABS_Y; 0 when the driver does not know. */
  resolution: number;
}

const ABSINFO_FIELDS = ['value', 'minimum', 'maximum', 'fuzz', 'flat', 'resolution'] as const;
const ABSINFO_BYTES = ABSINFO_FIELDS.length * 4;

/** Decode the ioctl's bytes (six __s32 in host byte order); undefined if the size is wrong. */
export function parseAbsInfo(bytes: Buffer, endianness: 'LE' | 'BE' = os.endianness()): AbsInfo | undefined {
  if (bytes.length !== ABSINFO_BYTES) return undefined;
  const read = (i: number): number =>
    endianness === 'LE' ? bytes.readInt32LE(i * 4) : bytes.readInt32BE(i * 4);
  return {
    value: read(0),
    minimum: read(1),
    maximum: read(2),
    fuzz: read(3),
    flat: read(4),
    resolution: read(5),
  };
}

/** udev's abs_size_mm(): (maximum - minimum) / resolution in C `int` arithmetic (wraps, truncates). */
export function absSizeMm(axis: Pick<AbsInfo, 'minimum' | 'maximum' | 'resolution'>): number {
  return Math.trunc(((axis.maximum - axis.minimum) | 0) / axis.resolution);
}

/** udev's extract_info(): both sizes, or nothing when either axis has no resolution. */
export function surfaceSizeProperties(x: AbsInfo, y: AbsInfo): Map<string, string> {
  const props = new Map<string, string>();
  if (x.resolution <= 0 || y.resolution <= 0) return props;
  props.set('ID_INPUT_WIDTH_MM', String(absSizeMm(x)));
  props.set('ID_INPUT_HEIGHT_MM', String(absSizeMm(y)));
  return props;
}

/** Ask the event node for ABS_X and ABS_Y; any failure just leaves the sizes out, as in udev. */
function readSurfaceSize(host: BuiltinHost, devnode: string | undefined): Map<string, string> {
  if (devnode === undefined || host.readAbsInfo === undefined) return new Map();
  let x: AbsInfo | undefined;
  let y: AbsInfo | undefined;
  try {
    x = parseAbsInfo(host.readAbsInfo(devnode, ABS_X));
    y = parseAbsInfo(host.readAbsInfo(devnode, ABS_Y));
  } catch {
    return new Map();
  }
  return x === undefined || y === undefined ? new Map() : surfaceSizeProperties(x, y);
}

export const inputId = ((
  _argv: readonly string[],
  device: BuiltinDevice,
  host: BuiltinHost,
): BuiltinResult => {
  // The argument is usually a child (eventN, mouseN) of the input device that has the bitmasks.
  let input: BuiltinDevice | undefined = device;
  while (input !== undefined && host.readAttr(input.syspath, 'capabilities/ev') === undefined) {
    input = ancestorWith(host, input, 'input');
  }
  const props = new Map<string, string>();
  if (input === undefined) return succeed(props);
  // Marks the device as examined, so rules need not call input_id again.
  props.set('ID_INPUT', '1');
  const masks = readMasks(host, input);
  const isPointer = testPointers(masks, readBustype(host, input), props);
  const isKey = testKey(masks, props);
  // Some evdev nodes have only a scroll wheel.
  if (
    !isPointer &&
    !isKey &&
    masks.ev.test(EV_REL) &&
    (masks.rel.test(REL_WHEEL) || masks.rel.test(REL_HWHEEL))
  ) {
    props.set('ID_INPUT_KEY', '1');
  }
  if (masks.ev.test(EV_SW)) props.set('ID_INPUT_SWITCH', '1');
  if (device.sysname.startsWith('event') && masks.abs.test(ABS_X) && masks.abs.test(ABS_Y)) {
    for (const [k, v] of readSurfaceSize(host, device.devname)) props.set(k, v);
  }
  return succeed(props);
}) satisfies Builtin;
