#!/usr/bin/perl
# plclient.pl: each argument through perl's Socket::getaddrinfo and
# gethostbyname, printed in a stable form for the glibc oracle.
use strict;
use warnings;
use Socket qw(getaddrinfo getnameinfo SOCK_STREAM NI_NUMERICHOST NIx_NOSERV AI_CANONNAME);
for my $n (@ARGV) {
	my ($err, @res) = getaddrinfo($n, "80", {socktype => SOCK_STREAM, flags => AI_CANONNAME});
	my @a = map { (getnameinfo($_->{addr}, NI_NUMERICHOST, NIx_NOSERV))[1] } @res;
	my $canon = @res ? ($res[0]{canonname} // "") : "";
	my @h = gethostbyname($n);
	my $hn = @h ? join(",", $h[0], scalar(@h) - 4) : "-";
	printf "%s: gai=%d(%s) %s canon=%s ghbn=%s\n", $n, $err + 0, "$err", join(" ", @a), $canon, $hn;
}
