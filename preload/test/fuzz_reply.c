/* fuzz_reply: libFuzzer target for the reply parser (src/wire.c).  The
 * first byte picks the query type and the parsing rules; the question is
 * taken from the input itself so that the parser gets past the question
 * check and into the answer records. */
#include <string.h>

#include "dnscache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dc_answer a;
	if (size < 1)
		return 0;
	uint16_t qtype = (data[0] & 1) ? DC_T_AAAA : DC_T_A;
	bool hostent = (data[0] & 2) != 0;
	data++;
	size--;
	uint8_t q[DC_MAXCDNAME + 1] = {0};
	/* The question name as sent: a copy of the uncompressed name at offset
	 * 12, when there is one. */
	size_t o = 12, qo = 0;
	while (o < size && data[o] && data[o] < 64 && qo + data[o] + 2 < sizeof q && o + 1 + data[o] <= size) {
		memcpy(q + qo, data + o, 1 + (size_t)data[o]);
		qo += 1 + (size_t)data[o];
		o += 1 + (size_t)data[o];
	}
	q[qo] = 0;
	uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
	if (dc_parse_reply(data, size, id, qtype, q, hostent, &a) == 0) {
		/* Everything reported must be within bounds and terminated. */
		if (a.naddrs < 0 || a.naddrs > DC_MAX_ADDRS || a.naliases > DC_MAX_ALIASES)
			__builtin_trap();
		for (int i = 0; i < a.naliases; i++)
			if (a.alias_off[i] >= sizeof a.names || strlen(dc_alias(&a, i)) >= DC_MAXDNAME)
				__builtin_trap();
		if (strlen(a.canon) >= DC_MAXDNAME)
			__builtin_trap();
	}
	return 0;
}
