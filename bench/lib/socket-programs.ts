// The C programs the socket benchmarks serve, compiled per run in the benchmark's temporary
// directory (bench/lib/connect-load's compileC): what every activator runs for a connection, a
// fork-per-connection server as the ceiling, and a LISTEN_FDS daemon for the cold start.

/** Accept=yes / inetd service: writes one line to stdout (the connection) and exits. */
export const ONE_LINE_SOURCE = String.raw`
#include <unistd.h>

int main(void) {
  static const char line[] = "hello from the accept benchmark\n";
  return write(1, line, sizeof line - 1) == (ssize_t)(sizeof line - 1) ? 0 : 1;
}
`;

/**
 * The ceiling: a plain fork-per-connection server on 127.0.0.1:PORT that execs PROGRAM with the
 * connection as stdin and stdout (what xinetd and systemd-socket-activate --inetd do, minus their
 * bookkeeping). Children are reaped by the kernel (SIGCHLD ignored). Prints "listening" when ready.
 */
export const FORK_SERVER_SOURCE = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s PORT PROGRAM\n", argv[0]); return 2; }
  signal(SIGCHLD, SIG_IGN);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) { perror("bind/listen"); return 1; }
  printf("listening\n");
  fflush(stdout);
  char *args[] = { argv[2], NULL };
  char *envp[] = { NULL };
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) { if (errno == EINTR || errno == ECONNABORTED) continue; perror("accept"); return 1; }
    pid_t pid = fork();
    if (pid == 0) {
      signal(SIGCHLD, SIG_DFL);
      dup2(c, 0); dup2(c, 1);
      execve(args[0], args, envp);
      _exit(127);
    }
    if (pid < 0) perror("fork");
    close(c);
  }
}
`;

/**
 * An Accept=no daemon as sd_listen_fds(3) expects: LISTEN_PID must be its own pid and LISTEN_FDS
 * at least 1; it accepts on fd 3 (waiting with poll: the activator may pass it non-blocking),
 * writes one byte to each connection and closes it, until it is stopped.
 */
export const LISTEN_FDS_DAEMON_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() || atoi(fds) < 1) {
    fprintf(stderr, "not socket-activated (LISTEN_PID=%s LISTEN_FDS=%s)\n", pid ? pid : "", fds ? fds : "");
    return 2;
  }
  unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDS"); unsetenv("LISTEN_FDNAMES");
  for (;;) {
    int c = accept4(3, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        struct pollfd p = { .fd = 3, .events = POLLIN };
        poll(&p, 1, -1);
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("accept");
      return 1;
    }
    (void)!write(c, "x", 1);
    close(c);
  }
}
`;
