/*  sub — subscribes to the hub's PUB socket and prints what it receives.

    sub ENDPOINT COUNT TIMEOUT_MS [TOPIC]

    Prints one line per message, "topic<TAB>seq<TAB>event-json", until COUNT
    messages arrived or nothing came for TIMEOUT_MS. Exit 0 when COUNT
    messages arrived, 1 otherwise. */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sub ENDPOINT COUNT TIMEOUT_MS [TOPIC]\n");
        return 2;
    }
    zsys_init();
    long want = atol(argv[2]);
    zsock_t *sub = zsock_new_sub(argv[1], argc > 4 ? argv[4] : "");
    if (!sub)
        return 2;
    zsock_set_rcvtimeo(sub, atoi(argv[3]));
    long got = 0;
    while (got < want) {
        char *topic = NULL, *seq = NULL, *body = NULL;
        if (zsock_recv(sub, "sss", &topic, &seq, &body) < 0)
            break;
        printf("%s\t%s\t%s\n", topic, seq, body);
        free(topic);
        free(seq);
        free(body);
        got++;
    }
    fflush(stdout);
    zsock_destroy(&sub);
    return got == want ? 0 : 1;
}
