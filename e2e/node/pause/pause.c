/*
 * The sandbox ("pause") image of the real-node suite: the process that holds a
 * pod's namespaces. It sleeps until SIGTERM or SIGINT (then exits 0) and reaps
 * any child re-parented to it (a pod with shareProcessNamespace: true makes it
 * PID 1 of the shared PID namespace). The same job as Kubernetes' own pause,
 * which cannot be pulled here; built static by e2e/node/images.sh:
 *   cc -static -Os -o pause pause.c
 * The app image carries it too, as a validator that never answers (scenario 8).
 */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = reap;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;) {
        pause();
    }
}
