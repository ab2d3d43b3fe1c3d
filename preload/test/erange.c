/* erange: gethostbyname_r with a tiny buffer, grown on ERANGE (the retry
 * protocol of glibc's getXXbyYY_r).  Prints the retries and the result. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		size_t len = 8;
		char *buf = malloc(len);
		struct hostent h, *res = NULL;
		int herr = 0, rc, retries = 0;
		while ((rc = gethostbyname_r(argv[i], &h, buf, len, &res, &herr)) == ERANGE) {
			retries++;
			len *= 2;
			buf = realloc(buf, len);
		}
		if (rc != 0 || res == NULL) {
			printf("%s: error rc=%d h_errno=%d retries=%d\n", argv[i], rc, herr, retries);
		} else {
			printf("%s: name=%s retries=%d", argv[i], h.h_name, retries);
			for (char **a = h.h_aliases; *a; a++)
				printf(" alias=%s", *a);
			for (char **a = h.h_addr_list; *a; a++) {
				char s[INET6_ADDRSTRLEN];
				inet_ntop(h.h_addrtype, *a, s, sizeof s);
				printf(" addr=%s", s);
			}
			printf("\n");
		}
		free(buf);
	}
	return 0;
}
