package main

import (
	"reflect"
	"testing"
)

// Output of kdig 3.x, trimmed.
const kdigOut = `;; ->>HEADER<<- opcode: QUERY; status: NOERROR; id: 4242
;; Flags: qr rd ra; QUERY: 1; ANSWER: 2; AUTHORITY: 0; ADDITIONAL: 1

;; QUESTION SECTION:
;; www.example.com.    		IN	A

;; ANSWER SECTION:
www.example.com.    	300	IN	A	198.18.1.2
www.example.com.    	300	IN	A	198.18.1.3

;; Received 76 B
;; Time 2026-11-21 23:30:00 UTC
;; From 127.0.0.1@1053(UDP) in 0.4 ms
`

func TestParseKdig(t *testing.T) {
	rcode, answers := parseKdig(kdigOut)
	if rcode != "NOERROR" || !reflect.DeepEqual(answers, []string{"198.18.1.2", "198.18.1.3"}) {
		t.Errorf("got %s %v", rcode, answers)
	}
	if m := kdigTime.FindStringSubmatch(kdigOut); m == nil || m[1] != "0.4" {
		t.Errorf("time %v", m)
	}
	rcode, answers = parseKdig(";; ->>HEADER<<- opcode: QUERY; status: NXDOMAIN; id: 1\n")
	if rcode != "NXDOMAIN" || len(answers) != 0 {
		t.Errorf("got %s %v", rcode, answers)
	}
}
