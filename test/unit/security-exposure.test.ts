// assessSecurity (src/exec/security-exposure.ts) on services parsed from unit text: an empty
// service is the most exposed, a hardened one scores low, every setting lowers the score on its
// own (the enforced ones both scores, the parsed-only ones just the declared score, and those are
// marked), list resets, prefixes and levels; and the text triggerctl prints from the report.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseUnitText } from '../../src/units/unit-loader';
import { assessSecurity, securityLevel, type SecurityReport } from '../../src/exec/security-exposure';
import {
  formatSecurityList,
  formatSecurityReport,
  securityRow,
  serviceSecurityJson,
} from '../../src/control/security-view';

function assess(lines: string, managerIsRoot = true): SecurityReport {
  const file = parseUnitText(
    'demo.service',
    `[Service]\nExecStart=/bin/true\n${lines}`,
    '/etc/x/demo.service',
  );
  const service = file.service;
  assert.ok(service !== undefined);
  return assessSecurity({
    exec: service.exec,
    ignored: (file.ignoredSettings ?? []).filter((e) => e.section === 'Service'),
    commands: service.execStart.map((command) => ({ setting: 'ExecStart', command })),
    managerIsRoot,
  });
}

function check(r: SecurityReport, name: string): SecurityReport['checks'][number] {
  const c = r.checks.find((x) => x.name === name);
  assert.ok(c !== undefined, `no check ${name}`);
  return c;
}

const ENFORCED_HARDENING = `User=nobody
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateNetwork=yes
CapabilityBoundingSet=
UMask=0077
InaccessiblePaths=/srv
`;

const PARSED_ONLY_HARDENING = `ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictAddressFamilies=AF_UNIX
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictRealtime=yes
SystemCallFilter=@system-service
SystemCallArchitectures=native
RemoveIPC=yes
PrivateUsers=yes
ProtectProc=invisible
ProcSubset=pid
PrivateIPC=yes
DevicePolicy=closed
IPAddressDeny=any
`;

describe('security exposure', () => {
  it('an empty service is the most exposed: UNSAFE, every weighted check open', () => {
    const r = assess('');
    assert.ok(r.exposure >= 9.9, `${r.exposure}`);
    assert.equal(r.level, 'UNSAFE');
    // KeyringMode= is closed under systemd by default (a private keyring); triggerd gives none.
    assert.ok(r.declaredExposure < r.exposure);
    assert.equal(check(r, 'KeyringMode=').declaredExposure, 0);
    for (const c of r.checks.filter((x) => x.weight > 0)) {
      // UMask=0022 (the default): files are readable by others, not writable.
      assert.equal(c.exposure, c.name === 'UMask=' ? 0.4 : 1, c.name);
      assert.equal(c.set, false, c.name);
      assert.equal(c.state, c.name === 'UMask=' ? 'partial' : 'exposed', c.name);
    }
    assert.deepEqual(r.notEnforced, []);
    assert.equal(check(r, 'User=/DynamicUser=').description, 'Service runs as root');
  });

  it('a hardened service scores low; the parsed-only settings lower only the declared score', () => {
    const enforced = assess(ENFORCED_HARDENING);
    assert.ok(enforced.exposure < 5, `${enforced.exposure}`);
    assert.equal(enforced.level, 'OK');
    for (const name of ['User=/DynamicUser=', 'NoNewPrivileges=', 'ProtectSystem=', 'PrivateNetwork=']) {
      assert.equal(check(enforced, name).state, 'protected', name);
    }
    const full = assess(ENFORCED_HARDENING + PARSED_ONLY_HARDENING);
    assert.equal(full.declaredExposure, 0);
    assert.equal(full.declaredLevel, 'OK');
    assert.equal(full.exposure, enforced.exposure, 'what triggerd does not apply does not count');
    assert.ok(full.notEnforced.includes('SystemCallFilter'));
    assert.ok(full.notEnforced.includes('ProtectKernelTunables'));
    assert.equal(full.notEnforced.length, PARSED_ONLY_HARDENING.trim().split('\n').length);
  });

  const enforcedCases: [string, string][] = [
    ['User=nobody', 'User=/DynamicUser='],
    ['NoNewPrivileges=yes', 'NoNewPrivileges='],
    ['ProtectSystem=yes', 'ProtectSystem='],
    ['ProtectSystem=full', 'ProtectSystem='],
    ['ProtectSystem=strict', 'ProtectSystem='],
    ['ProtectHome=read-only', 'ProtectHome='],
    ['ProtectHome=tmpfs', 'ProtectHome='],
    ['ProtectHome=yes', 'ProtectHome='],
    ['PrivateTmp=yes', 'PrivateTmp='],
    ['PrivateDevices=yes', 'PrivateDevices='],
    ['PrivateNetwork=yes', 'PrivateNetwork='],
    ['CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'CapabilityBoundingSet=~CAP_SYS_ADMIN'],
    ['CapabilityBoundingSet=~CAP_SYS_ADMIN', 'CapabilityBoundingSet=~CAP_SYS_ADMIN'],
    ['UMask=0077', 'UMask='],
    ['UMask=0027', 'UMask='],
    ['ReadOnlyPaths=/etc', 'ReadOnlyPaths='],
    ['InaccessiblePaths=/srv', 'InaccessiblePaths='],
  ];
  for (const [line, name] of enforcedCases) {
    it(`${line} lowers both scores and is enforced`, () => {
      const empty = assess('');
      const r = assess(line);
      assert.ok(r.exposure < empty.exposure, `${r.exposure} < ${empty.exposure}`);
      assert.ok(r.declaredExposure < empty.declaredExposure);
      const c = check(r, name);
      assert.equal(c.set, true);
      assert.equal(c.enforced, true);
      assert.ok(c.exposure < 1);
      assert.notEqual(c.state, 'not-enforced');
      assert.deepEqual(r.notEnforced, []);
    });
  }

  const parsedOnlyCases: [string, string][] = PARSED_ONLY_HARDENING.trim()
    .split('\n')
    .map((line) => {
      const key = line.slice(0, line.indexOf('='));
      const name =
        key === 'DevicePolicy'
          ? 'DevicePolicy=/DeviceAllow='
          : key === 'IPAddressDeny'
            ? 'IPAddressDeny='
            : `${key}=`;
      return [line, name];
    });
  parsedOnlyCases.push(
    ['DynamicUser=yes', 'User=/DynamicUser='],
    ['DeviceAllow=/dev/null rw', 'DevicePolicy=/DeviceAllow='],
    ['SystemCallFilter=~@mount', 'SystemCallFilter='],
    ['RestrictNamespaces=~user', 'RestrictNamespaces='],
    ['RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6', 'RestrictAddressFamilies='],
    ['ProtectHostname=private', 'ProtectHostname='],
    ['PrivateUsers=self', 'PrivateUsers='],
  );
  for (const [line, name] of parsedOnlyCases) {
    it(`${line} lowers only the declared score and is marked not enforced`, () => {
      const empty = assess('');
      const r = assess(line);
      assert.equal(r.exposure, empty.exposure, 'triggerd does not apply it');
      assert.ok(
        r.declaredExposure < empty.declaredExposure,
        `${r.declaredExposure} < ${empty.declaredExposure}`,
      );
      const c = check(r, name);
      assert.equal(c.set, true);
      assert.equal(c.enforced, false);
      assert.equal(c.state, 'not-enforced');
      assert.equal(c.exposure, 1);
      assert.ok(c.declaredExposure < 1);
      assert.match(c.description, /not enforced/);
      assert.ok(r.notEnforced.includes(line.slice(0, line.indexOf('='))));
    });
  }

  it('grades: stricter values of one setting score lower', () => {
    const score = (l: string): number => assess(l).exposure;
    assert.ok(score('ProtectSystem=yes') > score('ProtectSystem=full'));
    assert.ok(score('ProtectSystem=full') > score('ProtectSystem=strict'));
    assert.ok(score('ProtectHome=read-only') > score('ProtectHome=yes'));
    // UMask= weighs little: its steps show in the check, less so in the rounded score.
    const umask = (l: string): number => check(assess(l), 'UMask=').exposure;
    assert.ok(umask('UMask=0000') > umask('UMask=0002'));
    assert.ok(umask('UMask=0002') > umask('UMask=0022'));
    assert.ok(umask('UMask=0022') > umask('UMask=0027'));
    assert.ok(umask('UMask=0027') > umask('UMask=0077'));
    const declared = (l: string): number => assess(l).declaredExposure;
    assert.ok(declared('SystemCallFilter=~@mount') > declared('SystemCallFilter=@system-service'));
    assert.ok(declared('RestrictNamespaces=~user') > declared('RestrictNamespaces=yes'));
  });

  it('an empty assignment resets a list setting: nothing is left to mark', () => {
    const r = assess('SystemCallFilter=@system-service\nSystemCallFilter=\n');
    const c = check(r, 'SystemCallFilter=');
    assert.equal(c.declaredExposure, 1);
    assert.equal(c.state, 'exposed');
    assert.equal(c.value, 'SystemCallFilter=@system-service; SystemCallFilter=', 'as written');
  });

  it('capabilities: PrivateDevices= drops CAP_SYS_RAWIO and CAP_MKNOD (enforced), ProtectKernelModules= CAP_SYS_MODULE (as declared only)', () => {
    const devices = assess('PrivateDevices=yes');
    assert.equal(check(devices, 'CapabilityBoundingSet=~CAP_(SYS_RAWIO|MKNOD)').exposure, 0);
    assert.equal(check(devices, 'CapabilityBoundingSet=~CAP_SYS_ADMIN').exposure, 1);
    const modules = assess('ProtectKernelModules=yes');
    const c = check(modules, 'CapabilityBoundingSet=~CAP_SYS_MODULE');
    assert.equal(c.exposure, 1);
    assert.equal(c.declaredExposure, 0);
    assert.equal(c.state, 'not-enforced');
    const bounded = assess('CapabilityBoundingSet=CAP_NET_BIND_SERVICE');
    assert.equal(check(bounded, 'CapabilityBoundingSet=~…').state, 'partial');
  });

  it('DynamicUser=yes: under triggerd the service still runs as root, and says so', () => {
    const r = assess('DynamicUser=yes');
    const c = check(r, 'User=/DynamicUser=');
    assert.equal(c.exposure, 1);
    assert.equal(c.declaredExposure, 0);
    assert.match(c.description, /runs as root/);
    assert.equal(check(r, 'AmbientCapabilities=').state, 'not-enforced');
  });

  it('AmbientCapabilities= on a non-root service is exposure; none is none', () => {
    assert.equal(check(assess('User=nobody'), 'AmbientCapabilities=').exposure, 0);
    const r = assess('User=nobody\nAmbientCapabilities=CAP_NET_BIND_SERVICE');
    const c = check(r, 'AmbientCapabilities=');
    assert.equal(c.exposure, 1);
    assert.match(c.description, /CAP_NET_BIND_SERVICE/);
  });

  it("'+' and '!' commands are pointed out: they escape the sandbox or the user", () => {
    const file = parseUnitText(
      'demo.service',
      '[Service]\nUser=nobody\nExecStartPre=+/bin/mkdir -p /run/demo\nExecStartPre=!/bin/chown nobody /run/demo\nExecStart=/bin/true\n',
      '/etc/x/demo.service',
    );
    const r = serviceSecurityJson('demo.service', file, true);
    assert.ok(r !== undefined);
    assert.equal(r.notes.length, 2);
    assert.match(r.notes[0] ?? '', /^ExecStartPre=\+\/bin\/mkdir -p \/run\/demo runs with full privileges/);
    assert.match(r.notes[1] ?? '', /^ExecStartPre=!\/bin\/chown .* runs as root/);
  });

  it('a daemon that is not root runs services as its own user: not counted as root', () => {
    const r = assess('', false);
    assert.equal(check(r, 'User=/DynamicUser=').exposure, 0);
    assert.ok(r.exposure < 10);
    assert.ok(r.notes.some((n) => /not run as root/.test(n)));
  });

  it('levels by score', () => {
    assert.equal(securityLevel(0), 'OK');
    assert.equal(securityLevel(4.9), 'OK');
    assert.equal(securityLevel(4.94), 'OK');
    assert.equal(securityLevel(4.96), 'MEDIUM', 'goes by the printed value, 5.0');
    assert.equal(securityLevel(5), 'MEDIUM');
    assert.equal(securityLevel(6.9), 'MEDIUM');
    assert.equal(securityLevel(7), 'EXPOSED');
    assert.equal(securityLevel(8.9), 'EXPOSED');
    assert.equal(securityLevel(9), 'UNSAFE');
    assert.equal(securityLevel(10), 'UNSAFE');
  });

  it('a non-service file has no report', () => {
    const file = parseUnitText('t.timer', '[Timer]\nOnActiveSec=1h\n', '/etc/x/t.timer');
    assert.equal(serviceSecurityJson('t.timer', file, true), undefined);
  });
});

describe('security view', () => {
  it('the report: marks, weights, shares that add up to the score, and the overall lines', () => {
    const file = parseUnitText(
      'web.service',
      `[Service]\nExecStart=/bin/true\n${ENFORCED_HARDENING}SystemCallFilter=@system-service\n`,
      '/etc/x/web.service',
    );
    const r = serviceSecurityJson('web.service', file, true);
    assert.ok(r !== undefined);
    const text = formatSecurityReport(r);
    const lines = text.split('\n');
    assert.match(lines[0] ?? '', /^ +NAME +SET +WEIGHT +EXPOSURE +DESCRIPTION$/);
    assert.match(text, /^! +SystemCallFilter= +yes +10 +[0-9.]+ +Parsed, not enforced: /m);
    assert.match(text, /^✓ +NoNewPrivileges= +yes +10 +Service cannot gain privileges/m);
    assert.match(text, /^✗ +ProtectKernelTunables= +no +8 +[0-9.]+ +Service may change kernel tunables/m);
    assert.ok(
      text.includes(`→ Overall exposure level for web.service: ${r.exposure.toFixed(1)} ${r.level}\n`),
    );
    assert.ok(text.includes('! Parsed, not enforced by triggerd: SystemCallFilter=\n'));
    const shares = lines
      .map((l) => /^[!✗~✓ ] +\S.*? +(?:yes|no) +\d+ +([0-9.]+) +/.exec(l)?.[1])
      .filter((s): s is string => s !== undefined)
      .reduce((sum, s) => sum + Number(s), 0);
    assert.ok(Math.abs(shares - r.exposure) < 0.1, `${shares} vs ${r.exposure}`);
  });

  it('the list: one line per service, most exposed first', () => {
    const mk = (name: string, body: string): ReturnType<typeof securityRow> => {
      const r = serviceSecurityJson(
        name,
        parseUnitText(name, `[Service]\nExecStart=/bin/true\n${body}`, `/x/${name}`),
        true,
      );
      assert.ok(r !== undefined);
      return securityRow(r);
    };
    const text = formatSecurityList([mk('a.service', ENFORCED_HARDENING), mk('b.service', '')]);
    const lines = text.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^UNIT +EXPOSURE +PREDICATE +AS WRITTEN +NOT ENFORCED$/);
    assert.match(lines[1] ?? '', /^b\.service +(10\.0|9\.9) +UNSAFE +\d+\.\d UNSAFE +0$/);
    assert.match(lines[2] ?? '', /^a\.service +\d\.\d +OK +\d\.\d OK +0$/);
  });
});
