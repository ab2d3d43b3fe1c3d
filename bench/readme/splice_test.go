package main

import "testing"

func TestSplice(t *testing.T) {
	doc := "# P\n\nintro\n" + begin + "\nold table\n" + end + "\ntail\n"
	got, err := splice(doc, "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# P\n\nintro\n" + begin + "\n| new |\n" + end + "\ntail\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	again, _ := splice(got, "| new |\n")
	if again != got {
		t.Error("splice is not idempotent")
	}
	for _, bad := range []string{"no markers", end + begin} {
		if _, err := splice(bad, "x"); err == nil {
			t.Errorf("splice(%q) succeeded", bad)
		}
	}
}
