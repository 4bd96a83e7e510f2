#!/usr/bin/perl
# Stand-in resolver: answers on 53/tcp and echoes on 53/udp; serves the admin page on 80.
use strict;
use warnings;
use IO::Socket::INET;
$| = 1;
$SIG{TERM} = sub { exit 0 };
if (fork() == 0) { exec 'perl', '/usr/local/bin/httpd.pl', '80' or die "exec: $!" }
if (fork() == 0) {
    my $u = IO::Socket::INET->new(LocalPort => 53, Proto => 'udp') or die "udp 53: $!";
    while (1) { my $peer = $u->recv(my $msg, 512); $u->send($msg) if defined $peer }
}
my $t = IO::Socket::INET->new(LocalPort => 53, Listen => 8, ReuseAddr => 1, Proto => 'tcp') or die "tcp 53: $!";
print "resolver ready\n";
while (my $c = $t->accept) { print $c "ok\n"; close $c }
