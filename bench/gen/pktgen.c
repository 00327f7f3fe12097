// pktgen.c — a bounded AF_PACKET frame generator for vnf's forwarding benchmark.
//
// Prebuilds one frame per session and sends them round-robin with sendmmsg() on a packet
// socket bound to one interface, for at most -t seconds (and at most -c frames). Two kinds:
//
//   pppoe  upstream subscriber traffic: Ethernet(dst=AC MAC, src=client MAC i)
//          + PPPoE session (id = first_sid + i) + PPP 0x0021 + IPv4(src = pool + i,
//          dst = server) + UDP
//   ipv4   plain IPv4/UDP (downstream toward the subscribers, or the kernel-forwarding
//          reference): Ethernet(dst, src) + IPv4(src = server, dst = pool + i) + UDP
//
// Client MACs are 02:62:00:ii:ii:ii. Addresses must be inside 100.64.0.0/10 (pool) and
// 198.18.0.0/15 (server); the program refuses anything else.
//
// build: cc -O2 -o pktgen pktgen.c
// usage: pktgen -i IF -d DSTMAC -s SRCMAC -m pppoe|ipv4 -l FRAMELEN -t SECONDS
//               [-n SESSIONS=1000] [-S FIRST_SID=1] [-p POOL=100.64.0.2]
//               [-a SERVER=198.18.2.2] [-b BATCH=256] [-r PPS=0] [-c MAXFRAMES=0]
// prints one JSON line: {"sent": N, "seconds": S, "pps": P, "errors": E}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME 1514
#define MAX_SESSIONS (1 << 20)
#define PACKET_QDISC_BYPASS_OPT 20

static double monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_mac(const char *text, uint8_t mac[6]) {
  return sscanf(text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
                &mac[4], &mac[5]) == 6
             ? 0
             : -1;
}

static uint16_t checksum(const uint8_t *data, int length) {
  uint32_t sum = 0;
  for (int i = 0; i + 1 < length; i += 2) sum += (uint32_t)(data[i] << 8 | data[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static int inside(uint32_t address, uint32_t network, int prefix) {
  uint32_t mask = prefix ? 0xffffffffu << (32 - prefix) : 0;
  return (address & mask) == (network & mask);
}

// IPv4 + UDP of ip_length bytes at p; returns bytes written.
static int build_ip(uint8_t *p, int ip_length, uint32_t src, uint32_t dst, uint16_t ident) {
  memset(p, 0, (size_t)ip_length);
  p[0] = 0x45;
  p[2] = (uint8_t)(ip_length >> 8);
  p[3] = (uint8_t)ip_length;
  p[4] = (uint8_t)(ident >> 8);
  p[5] = (uint8_t)ident;
  p[8] = 64;
  p[9] = 17;
  uint32_t s = htonl(src), d = htonl(dst);
  memcpy(p + 12, &s, 4);
  memcpy(p + 16, &d, 4);
  uint16_t sum = checksum(p, 20);
  p[10] = (uint8_t)(sum >> 8);
  p[11] = (uint8_t)sum;
  int udp_length = ip_length - 20;
  p[20] = 0x13;  // source port 5001
  p[21] = 0x89;
  p[22] = 0x13;  // destination port 5001
  p[23] = 0x89;
  p[24] = (uint8_t)(udp_length >> 8);
  p[25] = (uint8_t)udp_length;
  return ip_length;
}

int main(int argc, char **argv) {
  const char *ifname = NULL, *kind = "pppoe";
  uint8_t dst[6] = {0}, src[6] = {0};
  int frame_length = 64, sessions = 1000, first_sid = 1, batch = 256, opt;
  int have_dst = 0, have_src = 0;
  double seconds = 3.0, rate = 0.0;
  long long max_frames = 0;
  uint32_t pool = 0x64400002u;    // 100.64.0.2
  uint32_t server = 0xc6120202u;  // 198.18.2.2
  struct in_addr parsed;
  while ((opt = getopt(argc, argv, "i:d:s:m:l:t:n:S:p:a:b:r:c:")) != -1) {
    switch (opt) {
      case 'i': ifname = optarg; break;
      case 'd': if (parse_mac(optarg, dst)) { fprintf(stderr, "pktgen: bad -d\n"); return 2; } have_dst = 1; break;
      case 's': if (parse_mac(optarg, src)) { fprintf(stderr, "pktgen: bad -s\n"); return 2; } have_src = 1; break;
      case 'm': kind = optarg; break;
      case 'l': frame_length = atoi(optarg); break;
      case 't': seconds = atof(optarg); break;
      case 'n': sessions = atoi(optarg); break;
      case 'S': first_sid = atoi(optarg); break;
      case 'p': if (!inet_aton(optarg, &parsed)) { fprintf(stderr, "pktgen: bad -p\n"); return 2; } pool = ntohl(parsed.s_addr); break;
      case 'a': if (!inet_aton(optarg, &parsed)) { fprintf(stderr, "pktgen: bad -a\n"); return 2; } server = ntohl(parsed.s_addr); break;
      case 'b': batch = atoi(optarg); break;
      case 'r': rate = atof(optarg); break;
      case 'c': max_frames = atoll(optarg); break;
      default: return 2;
    }
  }
  int pppoe = strcmp(kind, "pppoe") == 0;
  if (!ifname || !have_dst || (!pppoe && !have_src) || (!pppoe && strcmp(kind, "ipv4"))) {
    fprintf(stderr, "usage: pktgen -i IF -d DSTMAC -s SRCMAC -m pppoe|ipv4 -l LEN -t SECONDS ...\n");
    return 2;
  }
  int header = pppoe ? 22 : 14;
  if (frame_length < header + 28 || frame_length > MAX_FRAME || seconds <= 0 || seconds > 600 ||
      sessions < 1 || sessions > MAX_SESSIONS || batch < 1 || batch > 1024 || first_sid < 1 ||
      (pppoe && first_sid + sessions - 1 > 0xfffe)) {
    fprintf(stderr, "pktgen: argument out of range\n");
    return 2;
  }
  // The traffic rule: subscriber pool and lab fabric only.
  if (!inside(pool, 0x64400000u, 10) || !inside(pool + (uint32_t)sessions - 1, 0x64400000u, 10) ||
      !inside(server, 0xc6120000u, 15)) {
    fprintf(stderr, "pktgen: addresses must be in 100.64.0.0/10 and 198.18.0.0/15\n");
    return 2;
  }

  uint8_t *frames = calloc((size_t)sessions, MAX_FRAME);
  if (!frames) { perror("calloc"); return 1; }
  for (int i = 0; i < sessions; i++) {
    uint8_t *f = frames + (size_t)i * MAX_FRAME;
    memcpy(f, dst, 6);
    if (pppoe) {
      uint8_t client[6] = {0x02, 0x62, 0x00, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
      memcpy(f + 6, client, 6);
      f[12] = 0x88; f[13] = 0x64;
      f[14] = 0x11; f[15] = 0x00;
      int sid = first_sid + i, payload = frame_length - 20;
      f[16] = (uint8_t)(sid >> 8); f[17] = (uint8_t)sid;
      f[18] = (uint8_t)(payload >> 8); f[19] = (uint8_t)payload;
      f[20] = 0x00; f[21] = 0x21;
      build_ip(f + 22, frame_length - 22, pool + (uint32_t)i, server, (uint16_t)i);
    } else {
      memcpy(f + 6, src, 6);
      f[12] = 0x08; f[13] = 0x00;
      build_ip(f + 14, frame_length - 14, server, pool + (uint32_t)i, (uint16_t)i);
    }
  }

  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS_OPT, &one, sizeof one);
  int sndbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  struct sockaddr_ll address = {0};
  address.sll_family = AF_PACKET;
  address.sll_protocol = 0;  // transmit only: this socket receives nothing
  address.sll_ifindex = (int)if_nametoindex(ifname);
  if (!address.sll_ifindex) { fprintf(stderr, "pktgen: no interface %s\n", ifname); return 1; }
  if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) { perror("bind"); return 1; }

  struct mmsghdr *messages = calloc((size_t)batch, sizeof *messages);
  struct iovec *vectors = calloc((size_t)batch, sizeof *vectors);
  if (!messages || !vectors) { perror("calloc"); return 1; }
  long long sent = 0, errors = 0;
  int next = 0;
  double start = monotonic(), end = start + seconds, current = start;
  while (current < end && (!max_frames || sent < max_frames)) {
    int count = batch;
    if (max_frames && sent + count > max_frames) count = (int)(max_frames - sent);
    if (rate > 0) {
      double due = (current - start) * rate - (double)sent;
      if (due < 1) { current = monotonic(); continue; }
      if (due < count) count = (int)due;
    }
    for (int k = 0; k < count; k++) {
      vectors[k].iov_base = frames + (size_t)next * MAX_FRAME;
      vectors[k].iov_len = (size_t)frame_length;
      messages[k].msg_hdr.msg_iov = &vectors[k];
      messages[k].msg_hdr.msg_iovlen = 1;
      next = next + 1 == sessions ? 0 : next + 1;
    }
    int done = sendmmsg(fd, messages, (unsigned)count, 0);
    if (done < 0) {
      if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR) { perror("sendmmsg"); return 1; }
      errors++;
    } else {
      sent += done;
    }
    current = monotonic();
  }
  double elapsed = monotonic() - start;
  printf("{\"sent\": %lld, \"seconds\": %.4f, \"pps\": %.1f, \"errors\": %lld}\n", sent, elapsed,
         (double)sent / elapsed, errors);
  close(fd);
  free(frames);
  free(messages);
  free(vectors);
  return 0;
}
