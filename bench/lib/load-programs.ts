// The C programs of the combined load (bench/load and its integration test), compiled per run
// with bench/lib/connect-load's compileC: a Type=notify service that floods NOTIFY_SOCKET, and a
// file creator for the path-event burst. Each does a bounded amount of work, writes what it did
// as one JSON object to a result file (temporary name, then renamed: a reader never sees half),
// and never runs inside the benchmark's own process, so the status probe's event loop stays free.

/**
 * `notify-flood COUNT RESULT`: as a Type=notify service's main process, sends READY=1, then COUNT
 * datagrams `STATUS=load I` and a last `STATUS=done COUNT` to $NOTIFY_SOCKET on one socket with
 * blocking sendto (a full queue makes it wait, as sd_notify() does; nothing is dropped), writes
 * {sent, failed, firstErrno, ms, lastRealtimeNs} to RESULT and then waits for its SIGTERM.
 */
export const NOTIFY_FLOOD_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int fd = -1;
static struct sockaddr_un to;
static socklen_t to_len;

static int send_text(const char *text) {
  for (;;) {
    if (sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&to, to_len) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s COUNT RESULT\n", argv[0]); return 2; }
  long count = atol(argv[1]);
  const char *result = argv[2];
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || strlen(path) == 0 || strlen(path) >= sizeof to.sun_path) {
    fprintf(stderr, "no usable NOTIFY_SOCKET\n");
    return 2;
  }
  to.sun_family = AF_UNIX;
  memcpy(to.sun_path, path, strlen(path));
  if (to.sun_path[0] == '@') to.sun_path[0] = '\0';
  to_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int err = send_text("READY=1\nSTATUS=flooding");
  if (err != 0) { fprintf(stderr, "READY=1: %s\n", strerror(err)); return 1; }
  long sent = 0, failed = 0;
  int first_errno = 0;
  char text[64];
  long long t0 = now_ns(CLOCK_MONOTONIC);
  for (long i = 1; i <= count; i++) {
    snprintf(text, sizeof text, "STATUS=load %ld", i);
    err = send_text(text);
    if (err == 0) sent++;
    else { failed++; if (first_errno == 0) first_errno = err; }
  }
  snprintf(text, sizeof text, "STATUS=done %ld", count);
  err = send_text(text);
  if (err == 0) sent++;
  else { failed++; if (first_errno == 0) first_errno = err; }
  long long ms = (now_ns(CLOCK_MONOTONIC) - t0) / 1000000LL;
  long long last = now_ns(CLOCK_REALTIME);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", result);
  FILE *f = fopen(tmp, "w");
  if (f == NULL) { perror("fopen"); return 1; }
  fprintf(f, "{\"sent\":%ld,\"failed\":%ld,\"firstErrno\":%d,\"ms\":%lld,\"lastRealtimeNs\":\"%lld\"}\n",
          sent, failed, first_errno, ms, last);
  fclose(f);
  if (rename(tmp, result) < 0) { perror("rename"); return 1; }
  for (;;) pause();
}
`;

/**
 * `file-burst DIR COUNT RESULT`: creates DIR/fI for I in 0..COUNT-1, writes one byte to each and
 * closes it (IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE per file), then writes {created, failed, ms,
 * lastRealtimeNs} to RESULT: the CLOCK_REALTIME after the last close, for the final-trigger check.
 */
export const FILE_BURST_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s DIR COUNT RESULT\n", argv[0]); return 2; }
  const char *dir = argv[1];
  long count = atol(argv[2]);
  long created = 0, failed = 0;
  char name[4096];
  long long t0 = now_ns(CLOCK_MONOTONIC);
  for (long i = 0; i < count; i++) {
    snprintf(name, sizeof name, "%s/f%ld", dir, i);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { failed++; continue; }
    if (write(fd, "x", 1) != 1) failed++;
    else created++;
    close(fd);
  }
  long long last = now_ns(CLOCK_REALTIME);
  long long ms = (now_ns(CLOCK_MONOTONIC) - t0) / 1000000LL;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[3]);
  FILE *f = fopen(tmp, "w");
  if (f == NULL) { perror("fopen"); return 1; }
  fprintf(f, "{\"created\":%ld,\"failed\":%ld,\"ms\":%lld,\"lastRealtimeNs\":\"%lld\"}\n", created, failed, ms, last);
  fclose(f);
  return rename(tmp, argv[3]) < 0 ? 1 : 0;
}
`;
