// The floor for a control request under load: a single-threaded C server on a unix stream socket
// (epoll, non-blocking, xinetd's internal "echo" service in spirit) that answers each line with a
// fixed line and does nothing else. Probed exactly like the daemon's control socket (one
// persistent connection, one question at a time), its latency is what the machine's scheduler
// alone costs a process that is woken to answer: the part of the daemon's latency no change in
// the daemon can remove. Started by pid, stopped by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { compileC } from './connect-load';
import { onCleanup } from './cleanup';
import { stopChild, waitFor } from './proc';

export const LINE_ECHO_SOURCE = String.raw`
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One fixed answer per request line; a connection's partial line is kept up to 4 KiB. */
#define MAXC 64
static const char ANSWER[] = "{\"ok\":true}\n";
struct conn { int fd; size_t used; char buf[4096]; };
static struct conn conns[MAXC];

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: line-echo SOCKET\n"); return 2; }
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {0};
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  unlink(argv[1]);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 64) < 0) { perror("listen"); return 1; }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = MAXC};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  for (int i = 0; i < MAXC; i++) conns[i].fd = -1;
  for (;;) {
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { perror("epoll_wait"); return 1; }
    for (int k = 0; k < n; k++) {
      unsigned id = evs[k].data.u32;
      if (id == MAXC) {
        int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) continue;
        int slot = -1;
        for (int i = 0; i < MAXC; i++) if (conns[i].fd < 0) { slot = i; break; }
        if (slot < 0) { close(fd); continue; }
        conns[slot].fd = fd;
        conns[slot].used = 0;
        struct epoll_event ce = {.events = EPOLLIN, .data.u32 = (unsigned)slot};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
        continue;
      }
      struct conn *c = &conns[id];
      ssize_t r = read(c->fd, c->buf + c->used, sizeof c->buf - c->used);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        close(c->fd);
        c->fd = -1;
        continue;
      }
      c->used += (size_t)r;
      size_t start = 0;
      for (size_t i = 0; i < c->used; i++) {
        if (c->buf[i] != '\n') continue;
        if (write(c->fd, ANSWER, sizeof ANSWER - 1) < 0) break;
        start = i + 1;
      }
      memmove(c->buf, c->buf + start, c->used - start);
      c->used -= start;
      if (c->used == sizeof c->buf) c->used = 0; /* a line longer than the buffer: dropped */
    }
  }
}
`;

export interface LineEchoPeer {
  pid: number;
  socket: string;
  stop(): Promise<void>;
}

/** Compile and start the peer at `socket`; `ownSession` as for the daemon (see startTriggerd). */
export async function startLineEchoPeer(
  binDir: string,
  socket: string,
  ownSession: boolean,
): Promise<LineEchoPeer> {
  const binary = await compileC(binDir, 'line-echo', LINE_ECHO_SOURCE);
  const child: ChildProcess = spawn(binary, [socket], { stdio: 'ignore', detached: ownSession });
  const stop = async (): Promise<void> => {
    await stopChild(child, 2000);
  };
  const dispose = onCleanup('stop the line-echo peer', () => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  });
  if (!(await waitFor(() => fs.existsSync(socket), 5000, 10)) || child.pid === undefined) {
    dispose();
    await stop();
    throw new Error(`line-echo peer did not listen on ${socket}`);
  }
  return {
    pid: child.pid,
    socket,
    stop: async () => {
      dispose();
      await stop();
    },
  };
}

/** One persistent connection; `ask()` sends a line and resolves on the answer line. */
export class LinePinger {
  private buffered = '';
  private waiting: { resolve: () => void; reject: (e: Error) => void } | undefined;

  private constructor(private readonly conn: net.Socket) {
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => {
      this.buffered += chunk;
      while (this.buffered.includes('\n')) {
        this.buffered = this.buffered.slice(this.buffered.indexOf('\n') + 1);
        const w = this.waiting;
        this.waiting = undefined;
        w?.resolve();
      }
    });
    conn.on('error', (err) => this.fail(err));
    conn.on('close', () => this.fail(new Error('connection closed')));
  }

  static connect(socket: string): Promise<LinePinger> {
    return new Promise((resolve, reject) => {
      const conn = net.connect(socket);
      conn.once('connect', () => resolve(new LinePinger(conn)));
      conn.once('error', reject);
    });
  }

  ask(): Promise<void> {
    if (this.waiting !== undefined) return Promise.reject(new Error('one question at a time'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.conn.write('{"id":1,"method":"status"}\n');
    });
  }

  close(): void {
    this.conn.destroy();
  }

  private fail(err: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }
}
