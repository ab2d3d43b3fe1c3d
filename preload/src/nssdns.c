/* nssdns.c: glibc's own "dns" NSS module, called when the cache cannot
 * answer (the shim sits in dns's place on the hosts line).
 *
 * Its functions are found at run time, so that no symbol version is needed
 * at link time (ABI: GLIBC_2.17 at most): since glibc 2.34 they live in
 * libc.so.6 itself (_nss_dns_gethostbyname4_r@GLIBC_PRIVATE); before, in
 * libnss_dns.so.2, which is loaded on demand through libc's private
 * __libc_dlopen_mode.  Symbols are looked up in the loaded objects' dynamic
 * symbol tables (DT_GNU_HASH or DT_HASH), found with dl_iterate_phdr, so
 * neither dlsym (GLIBC_2.34 in libc, or libdl before) is linked. */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>

#include "dnscache.h"

struct find {
	const char *name;
	void *addr;
};

static uint32_t gnu_hash(const char *s)
{
	uint32_t h = 5381;
	for (; *s; s++)
		h = h * 33 + (uint8_t)*s;
	return h;
}

static uint32_t elf_hash(const char *s)
{
	uint32_t h = 0;
	for (; *s; s++) {
		h = (h << 4) + (uint8_t)*s;
		uint32_t g = h & 0xf0000000u;
		if (g)
			h ^= g >> 24;
		h &= ~g;
	}
	return h;
}

/* ptr: the dynamic section's addresses are relocated by ld.so on most
 * targets, file-relative on some (read-only .dynamic). */
static const void *ptr(ElfW(Addr) base, ElfW(Addr) v)
{
	return (const void *)(v < base ? base + v : v);
}

static void *lookup(const struct dl_phdr_info *info, const char *name)
{
	const ElfW(Dyn) *dyn = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	if (!dyn)
		return NULL;
	ElfW(Addr) base = info->dlpi_addr;
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	const uint32_t *gnu = NULL, *sysv = NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		switch (dyn->d_tag) {
		case DT_SYMTAB: sym = ptr(base, dyn->d_un.d_ptr); break;
		case DT_STRTAB: str = ptr(base, dyn->d_un.d_ptr); break;
		case DT_GNU_HASH: gnu = ptr(base, dyn->d_un.d_ptr); break;
		case DT_HASH: sysv = ptr(base, dyn->d_un.d_ptr); break;
		}
	}
	if (!sym || !str)
		return NULL;
	if (gnu) {
		uint32_t nb = gnu[0], off = gnu[1], bloom = gnu[2];
		const uint32_t *buckets = gnu + 4 + bloom * (sizeof(ElfW(Addr)) / 4);
		const uint32_t *chain = buckets + nb;
		uint32_t h = gnu_hash(name);
		if (nb == 0)
			return NULL;
		for (uint32_t i = buckets[h % nb]; i >= off && i != 0; i++) {
			uint32_t c = chain[i - off];
			if ((c | 1) == (h | 1) && strcmp(str + sym[i].st_name, name) == 0 &&
			    sym[i].st_shndx != SHN_UNDEF)
				return (void *)(base + sym[i].st_value);
			if (c & 1)
				break;
		}
		return NULL;
	}
	if (sysv) {
		uint32_t nb = sysv[0];
		const uint32_t *buckets = sysv + 2, *chain = buckets + nb;
		for (uint32_t i = buckets[elf_hash(name) % nb]; i != 0; i = chain[i])
			if (strcmp(str + sym[i].st_name, name) == 0 && sym[i].st_shndx != SHN_UNDEF)
				return (void *)(base + sym[i].st_value);
	}
	return NULL;
}

static int each(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct find *f = data;
	const char *n = info->dlpi_name;
	if (!n || (!strstr(n, "/libc.so.") && !strstr(n, "/libnss_dns.so.") &&
	           strncmp(n, "libc.so.", 8) != 0 && strncmp(n, "libnss_dns.so.", 14) != 0))
		return 0;
	f->addr = lookup(info, f->name);
	return f->addr != NULL;
}

static void *find(const char *name)
{
	struct find f = {.name = name};
	dl_iterate_phdr(each, &f);
	return f.addr;
}

static const char *const names[DC_DNS_NFN] = {
	"_nss_dns_gethostbyname4_r",
	"_nss_dns_gethostbyname3_r",
	"_nss_dns_gethostbyaddr2_r",
	"_nss_dns_gethostbyaddr_r",
};
static _Atomic(void *) fns[DC_DNS_NFN];
static atomic_int done;

static void find_all(void **out)
{
	for (int i = 0; i < DC_DNS_NFN; i++)
		out[i] = find(names[i]);
}

/* resolve finds the module's functions once.  Threads that race on the
 * first call each do the (idempotent) search rather than wait, so a child
 * forked in the middle of it never waits on a thread it does not have. */
static void resolve(void)
{
	if (atomic_load_explicit(&done, memory_order_acquire))
		return;
	void *f[DC_DNS_NFN];
	find_all(f);
	if (!f[DC_DNS_GH4]) {
		/* glibc < 2.34: the module is its own object, loaded the way
		 * glibc loads NSS modules (RTLD_LAZY | __RTLD_DLOPEN). */
		void *(*dlopen_mode)(const char *, int) =
		    (void *(*)(const char *, int))find("__libc_dlopen_mode");
		if (dlopen_mode && dlopen_mode("libnss_dns.so.2", 0x80000001))
			find_all(f);
	}
	if (!f[DC_DNS_GH4] || !f[DC_DNS_GH3])
		dc_debug("glibc's dns module not found: no fallback");
	for (int i = 0; i < DC_DNS_NFN; i++)
		atomic_store_explicit(&fns[i], f[i], memory_order_relaxed);
	atomic_store_explicit(&done, 1, memory_order_release);
}

void *dc_dns_fn(enum dc_dns_fn which)
{
	resolve();
	return atomic_load_explicit(&fns[which], memory_order_relaxed);
}
