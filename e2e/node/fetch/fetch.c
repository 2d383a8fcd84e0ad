/*
 * `fetch PORT`: GET / from 127.0.0.1:PORT and print the response body, exit 0
 * on a 200 answer, 1 otherwise. The real-node suite runs it with `kubectl exec`
 * in the app container (the demo server listens on the pod's loopback only, and
 * its FROM scratch image has no curl) to see which config the app serves.
 * Gives up after 5 seconds. Built static by e2e/node/images.sh.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fetch PORT\n");
        return 2;
    }
    alarm(5);
    int port = atoi(argv[1]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("fetch: connect");
        return 1;
    }
    const char *req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        perror("fetch: write");
        return 1;
    }
    static char buf[65536];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) {
        len += (size_t)n;
    }
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0 || body == NULL) {
        fprintf(stderr, "fetch: no 200 answer\n");
        return 1;
    }
    body += 4;
    fwrite(body, 1, len - (size_t)(body - buf), stdout);
    return 0;
}
