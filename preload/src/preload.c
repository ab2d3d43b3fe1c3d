/* preload.c: when loaded with LD_PRELOAD, put the dnscache module into the
 * process's hosts lookup.
 *
 * The constructor reads the hosts line of /etc/nsswitch.conf (glibc's
 * default when there is none: "files dns"), inserts
 * "dnscache [!UNAVAIL=return]" before the first dns or resolve source, and
 * hands the line to __nss_configure_lookup.  When glibc later dlopens
 * "libnss_dnscache.so.2" it finds this already loaded object by its SONAME,
 * so the NSS functions in nss.c serve the lookups.  If the line already
 * names dnscache (the module is installed classically, or this object was
 * just dlopened by NSS itself) nothing is changed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <nss.h>
#include <string.h>
#include <unistd.h>

#include "dnscache.h"

#define LINE_MAX_ 1024

/* hosts_line finds the hosts sources in nsswitch.conf text; it copies
 * them to out (without comments) or returns false when there is no line. */
static bool hosts_line(const char *text, size_t len, char *out, size_t outlen)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *s = p;
		while (s < eol && (*s == ' ' || *s == '\t'))
			s++;
		if (eol - s > 6 && strncmp(s, "hosts", 5) == 0) {
			const char *c = s + 5;
			while (c < eol && (*c == ' ' || *c == '\t'))
				c++;
			if (c < eol && *c == ':') {
				c++;
				const char *hash = memchr(c, '#', (size_t)(eol - c));
				size_t l = (size_t)((hash ? hash : eol) - c);
				if (l >= outlen)
					return false;
				memcpy(out, c, l);
				out[l] = 0;
				return true;
			}
		}
		p = eol + 1;
	}
	return false;
}

/* dc_hosts_insert writes line with "dnscache [!UNAVAIL=return]" before the first
 * dns/resolve token.  Returns false when the line names dnscache already or
 * has no such token. */
bool dc_hosts_insert(const char *line, char *out, size_t outlen)
{
	size_t o = 0;
	bool inserted = false;
	int depth = 0;
	const char *p = line;
	out[0] = 0;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (!*p)
			break;
		const char *w = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
		size_t l = (size_t)(p - w);
		bool source = depth == 0 && w[0] != '[';
		for (size_t i = 0; i < l; i++)
			depth += (w[i] == '[') - (w[i] == ']');
		if (source && l == 8 && strncmp(w, "dnscache", 8) == 0)
			return false;
		const char *ins = "";
		if (source && !inserted &&
		    ((l == 3 && strncmp(w, "dns", 3) == 0) || (l == 7 && strncmp(w, "resolve", 7) == 0))) {
			ins = "dnscache [!UNAVAIL=return] ";
			inserted = true;
		}
		size_t il = strlen(ins);
		if (o + il + l + 2 > outlen)
			return false;
		if (o)
			out[o++] = ' ';
		memcpy(out + o, ins, il);
		memcpy(out + o + il, w, l);
		o += il + l;
		out[o] = 0;
	}
	return inserted;
}

__attribute__((constructor)) static void dc_preload_init(void)
{
	int saved = errno;
	if (dc_config()->disabled)
		goto out;
	char text[16384], line[LINE_MAX_], next[LINE_MAX_ + 64];
	size_t len = 0;
	int fd = open("/etc/nsswitch.conf", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		while (len < sizeof text) {
			ssize_t n = read(fd, text + len, sizeof text - len);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		close(fd);
	}
	if (!hosts_line(text, len, line, sizeof line))
		strcpy(line, "files dns");
	if (!dc_hosts_insert(line, next, sizeof next)) {
		dc_debug("hosts line \"%s\" left alone", line);
		goto out;
	}
	if (__nss_configure_lookup("hosts", next) != 0)
		dc_debug("__nss_configure_lookup(\"%s\") failed", next);
	else
		dc_debug("hosts: %s", next);
out:
	errno = saved;
}
