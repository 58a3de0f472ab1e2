/* A TLS server with OpenSSL linked into the executable (not libssl.so): the case
 * TLS capture attaches to the executable itself. Usage: ADDRESS PORT CERT KEY */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: ADDRESS PORT CERT KEY\n"); return 2; }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1) { fprintf(stderr, "bad certificate\n"); return 1; }
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) {
        perror("listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
            char request[8192], path[256] = "/", body[512], response[1024];
            int n = SSL_read(ssl, request, sizeof request - 1);
            if (n > 0) {
                request[n] = 0;
                sscanf(request, "%*s %255s", path);
                int bodyLength = snprintf(body, sizeof body, "static server saw %s\n", path);
                int length = snprintf(response, sizeof response,
                                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                                      bodyLength, body);
                SSL_write(ssl, response, length);
            }
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(c);
    }
}
