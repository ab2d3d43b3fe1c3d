/* preload.c: when loaded with LD_PRELOAD, put the dnscache module in the
 * place of glibc's dns module on the process's hosts line.
 *
 * The constructor takes the hosts line glibc itself would use (the last
 * "hosts" line of /etc/nsswitch.conf, parsed as glibc 2.36's nss_database.c
 * does; without one, glibc's default: "files dns" since 2.35, "dns
 * [!UNAVAIL=return] files" before),
 * replaces each "dns" source by "dnscache" keeping its actions and every
 * other source, and hands the line to __nss_configure_lookup.  When glibc
 * later dlopens "libnss_dnscache.so.2" it finds this already loaded object
 * by its SONAME.  The module answers what dns would have answered from the
 * cache's replies, and calls glibc's own dns module when the cache cannot
 * answer (nss.c), so every source before and after it and every action see
 * what they would see with dns.  A line that names dnscache already (the
 * module installed classically, or this object dlopened by NSS itself) or
 * has no dns source is left alone. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <nss.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnscache.h"

#define LINE_MAX_ 1024

static bool space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* dc_hosts_select: nss_database_reload_1 reads lines with getline and
 * stops at end of file, so a last line without a newline is not used;
 * process_line takes "<name>" then any run of blanks and colons; the last
 * hosts line wins.  Nothing strips comments: "#" is just another source
 * name to glibc (one that never loads), and is kept as such. */
void dc_hosts_select(const char *text, size_t len, const char *def, char *out, size_t outlen)
{
	const char *p = text, *end = text + len;
	bool found = false;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break;
		const char *s = p;
		while (s < eol && space(*s))
			s++;
		const char *name = s;
		while (s < eol && !space(*s) && *s != ':')
			s++;
		if (s - name == 5 && strncmp(name, "hosts", 5) == 0 && s < eol) {
			while (s < eol && (space(*s) || *s == ':'))
				s++;
			size_t l = (size_t)(eol - s);
			if (l < outlen && !memchr(s, 0, l)) {
				memcpy(out, s, l);
				out[l] = 0;
				found = true;
			}
		}
		p = eol + 1;
	}
	if (!found && outlen > 0) {
		size_t n = strnlen(def, outlen - 1);
		memcpy(out, def, n);
		out[n] = 0;
	}
}

/* dc_hosts_replace: sources end at a blank or '[' (nss_action_parse), an
 * action list runs to the next ']'. */
bool dc_hosts_replace(const char *line, char *out, size_t outlen)
{
	size_t o = 0;
	bool replaced = false;
	const char *p = line;
	while (*p) {
		const char *w = p;
		size_t l;
		if (space(*p)) {
			while (*p && space(*p))
				p++;
			l = (size_t)(p - w);
		} else if (*p == '[') {
			const char *e = strchr(p, ']');
			p = e ? e + 1 : p + strlen(p);
			l = (size_t)(p - w);
		} else {
			while (*p && !space(*p) && *p != '[')
				p++;
			l = (size_t)(p - w);
			if (l == 8 && strncmp(w, "dnscache", 8) == 0)
				return false;
			if (l == 3 && strncmp(w, "dns", 3) == 0) {
				w = "dnscache";
				l = 8;
				replaced = true;
			}
		}
		if (o + l + 1 > outlen)
			return false;
		memcpy(out + o, w, l);
		o += l;
	}
	out[o] = 0;
	return replaced;
}

__attribute__((constructor)) static void dc_preload_init(void)
{
	int saved = errno;
	if (dc_config()->disabled)
		goto out;
	/* On the heap: when glibc's NSS loads the module itself, this runs
	 * on the stack of whichever thread does the first lookup. */
	char *line = malloc(LINE_MAX_), *next = malloc(LINE_MAX_ + 64);
	if (!line || !next)
		goto done;
	size_t len = 0;
	char *text = dc_read_file("/etc/nsswitch.conf", &len);
	/* nss_database.c: the default changed in glibc 2.35 (bug 28700). */
	char *end;
	unsigned long maj = strtoul(gnu_get_libc_version(), &end, 10), min = 0;
	if (*end == '.')
		min = strtoul(end + 1, NULL, 10);
	const char *def = maj > 2 || (maj == 2 && min >= 35) ? "files dns" : "dns [!UNAVAIL=return] files";
	dc_hosts_select(text ? text : "", len, def, line, LINE_MAX_);
	free(text);
	if (!dc_hosts_replace(line, next, LINE_MAX_ + 64)) {
		dc_debug("hosts line \"%s\" left alone", line);
		goto done;
	}
	if (__nss_configure_lookup("hosts", next) != 0)
		dc_debug("__nss_configure_lookup(\"%s\") failed", next);
	else
		dc_debug("hosts: %s", next);
done:
	free(line);
	free(next);
out:
	errno = saved;
}
