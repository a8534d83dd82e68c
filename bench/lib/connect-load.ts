// The client side of the socket benchmarks: a small C program (compiled once per run in the
// benchmark's temporary directory) that opens TOTAL TCP connections to 127.0.0.1:PORT, at most
// CONCURRENCY at a time, and times each one from connect() to the first byte received and to EOF.
// Written in C so that the client costs the 2-core machine little and adds no GC pauses to the
// latencies; the same client measures every peer. Every connection ends within TIMEOUT_MS
// (counted as a failure otherwise), and the whole run is bounded by the runCommand timeout.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { runCommand } from './proc';

/**
 * Modes: `line` succeeds at EOF after a full line ('\n') arrived; `byte` succeeds at the first
 * byte and closes the connection itself (for daemons that keep their connections open).
 */
export const LOAD_CLIENT_SOURCE = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct slot { int fd; long long t0, first; int newline; };

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: %s PORT TOTAL CONCURRENCY TIMEOUT_MS line|byte\n", argv[0]); return 2; }
  int port = atoi(argv[1]), total = atoi(argv[2]), concurrency = atoi(argv[3]);
  long long timeout_us = atoll(argv[4]) * 1000LL;
  int byte_mode = strcmp(argv[5], "byte") == 0;
  if (total < 1 || concurrency < 1 || concurrency > 1024) return 2;
  long long *eof_us = calloc(total, sizeof *eof_us), *first_us = calloc(total, sizeof *first_us);
  struct slot *slots = calloc(concurrency, sizeof *slots);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!eof_us || !first_us || !slots || ep < 0) { perror("setup"); return 1; }
  for (int i = 0; i < concurrency; i++) slots[i].fd = -1;
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int started = 0, finished = 0, ok = 0, active = 0;
  int refused = 0, reset = 0, timedout = 0, noline = 0, other = 0;
  char buf[4096];
  long long wall0 = now_us();
  while (finished < total) {
    for (int i = 0; i < concurrency && started < total; i++) {
      if (slots[i].fd >= 0) continue;
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) { perror("socket"); return 1; }
      slots[i].t0 = now_us(); slots[i].first = 0; slots[i].newline = 0;
      started++;
      if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
        if (errno == ECONNREFUSED) refused++; else other++;
        close(fd); finished++;
        continue;
      }
      struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (unsigned)i };
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { perror("epoll_ctl"); return 1; }
      slots[i].fd = fd; active++;
    }
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, 20);
    if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
    long long t = now_us();
    for (int k = 0; k < n; k++) {
      struct slot *s = &slots[evs[k].data.u32];
      if (s->fd < 0) continue;
      int end = 0, failed = 0;
      for (;;) {
        ssize_t r = read(s->fd, buf, sizeof buf);
        if (r > 0) {
          if (s->first == 0) s->first = t;
          if (memchr(buf, '\n', (size_t)r) != NULL) s->newline = 1;
          if (byte_mode) { end = 1; break; }
          continue;
        }
        if (r == 0) { end = 1; break; }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        if (errno == ECONNREFUSED) refused++; else if (errno == ECONNRESET) reset++; else other++;
        failed = 1; end = 1; break;
      }
      if (!end) continue;
      if (!failed) {
        if (byte_mode ? s->first != 0 : s->newline) {
          eof_us[ok] = t - s->t0; first_us[ok] = s->first - s->t0; ok++;
        } else noline++;
      }
      close(s->fd); s->fd = -1; active--; finished++;
    }
    for (int i = 0; i < concurrency; i++) {
      if (slots[i].fd >= 0 && t - slots[i].t0 > timeout_us) {
        close(slots[i].fd); slots[i].fd = -1; active--; finished++; timedout++;
      }
    }
  }
  long long wall = now_us() - wall0;
  printf("{\"connections\":%d,\"ok\":%d,\"refused\":%d,\"reset\":%d,\"timedOut\":%d,\"noLine\":%d,\"other\":%d,\"wallUs\":%lld,\"eofUs\":[",
         total, ok, refused, reset, timedout, noline, other, wall);
  for (int i = 0; i < ok; i++) printf(i ? ",%lld" : "%lld", eof_us[i]);
  printf("],\"firstByteUs\":[");
  for (int i = 0; i < ok; i++) printf(i ? ",%lld" : "%lld", first_us[i]);
  printf("]}\n");
  return 0;
}
`;

export interface LoadResult {
  connections: number;
  ok: number;
  refused: number;
  reset: number;
  timedOut: number;
  /** Ended without the expected line (or byte). */
  noLine: number;
  other: number;
  wallUs: number;
  /** Per successful connection: connect() → EOF (line mode) or → first byte (byte mode), µs. */
  eofUs: number[];
  firstByteUs: number[];
}

export function failuresOf(r: LoadResult): number {
  return r.connections - r.ok;
}

/** Compile a C source file in `dir` with `cc -O2`; returns the binary's path. */
export async function compileC(dir: string, name: string, source: string): Promise<string> {
  const file = path.join(dir, `${name}.c`);
  const binary = path.join(dir, name);
  fs.writeFileSync(file, source);
  const result = await runCommand('cc', ['-O2', '-o', binary, file], { timeoutMs: 60_000 });
  if (result.code !== 0)
    throw new Error(`cc ${name}.c failed (${result.code}): ${result.stderr.slice(0, 2000)}`);
  return binary;
}

/** Run the compiled client once; throws only when the client itself broke (not for failed connections). */
export async function runLoad(
  client: string,
  port: number,
  total: number,
  concurrency: number,
  options: { mode?: 'line' | 'byte'; connectionTimeoutMs?: number; ownSession?: boolean } = {},
): Promise<LoadResult> {
  const connectionTimeoutMs = options.connectionTimeoutMs ?? 5000;
  // Bounded: even if every connection timed out one after the other.
  const bound = Math.ceil(total / concurrency) * connectionTimeoutMs + 30_000;
  const result = await runCommand(
    client,
    [String(port), String(total), String(concurrency), String(connectionTimeoutMs), options.mode ?? 'line'],
    { timeoutMs: bound, env: {}, ownSession: options.ownSession },
  );
  if (result.code !== 0) {
    throw new Error(
      `load client failed (exit ${result.code}${result.timedOut ? ', timed out' : ''}): ${result.stderr.slice(0, 1000)}`,
    );
  }
  return JSON.parse(result.stdout) as LoadResult;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port from listen(0)'))));
    });
  });
}

/** Wait until 127.0.0.1:port accepts a connection (closed at once); false after `timeoutMs`. */
export async function waitListening(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
