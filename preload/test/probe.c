/* probe: for each name, what a C program sees through glibc's entry
 * points: getaddrinfo (AI_CANONNAME; the EAI_* code, errno on EAI_SYSTEM),
 * getaddrinfo_a, gethostbyname (h_errno) and gethostbyname2_r (AF_INET6:
 * the return value, h_errno and errno).  The oracle compares its output
 * with and without the shim. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void print_ai(const char *what, int rc, struct addrinfo *res)
{
	printf(" %s=%d", what, rc);
	if (rc == EAI_SYSTEM)
		printf("/errno=%d", errno);
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		char s[INET6_ADDRSTRLEN] = "?";
		const void *p = a->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
		                                        : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		inet_ntop(a->ai_family, p, s, sizeof s);
		printf(" %s", s);
		if (a->ai_canonname)
			printf("(%s)", a->ai_canonname);
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *n = argv[i];
		printf("%s:", n);
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME}, *res = NULL;
		errno = 0;
		int rc = getaddrinfo(n, NULL, &hints, &res);
		print_ai("gai", rc, res);
		if (res)
			freeaddrinfo(res);

		struct addrinfo h2 = {.ai_socktype = SOCK_STREAM};
		struct gaicb cb = {.ar_name = n, .ar_request = &h2}, *list[1] = {&cb};
		rc = getaddrinfo_a(GAI_WAIT, list, 1, NULL);
		print_ai("gai_a", rc == 0 ? gai_error(&cb) : rc, cb.ar_result);
		if (cb.ar_result)
			freeaddrinfo(cb.ar_result);

		struct hostent *h = gethostbyname(n);
		printf(" ghbn=%s/h_errno=%d", h ? h->h_name : "-", h ? 0 : h_errno);

		char buf[16384];
		struct hostent he, *r = NULL;
		int herr = 0;
		errno = 0;
		rc = gethostbyname2_r(n, AF_INET6, &he, buf, sizeof buf, &r, &herr);
		printf(" ghbn2_r6=%d/%s/h_errno=%d/errno=%d\n", rc, r ? r->h_name : "-", herr, r ? 0 : errno);
	}
	return 0;
}
