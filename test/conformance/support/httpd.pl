#!/usr/bin/perl
# Tiny HTTP server (the image has no python or curl): answers 200 with $BODY (default "ok") on
# every TCP port given as an argument, one process per port.
use strict;
use warnings;
use IO::Socket::INET;

$| = 1;
my @ports = @ARGV ? @ARGV : (8080);
my $body = ($ENV{BODY} // 'ok') . "\n";
$SIG{TERM} = sub { exit 0 };
for my $p (@ports[1 .. $#ports]) {
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) { serve($p); exit 0 }
}
serve($ports[0]);

sub serve {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(LocalPort => $port, Listen => 16, ReuseAddr => 1, Proto => 'tcp')
      or die "listen on $port: $!";
    print "listening on $port\n";
    while (my $c = $s->accept) {
        my $req = <$c> // '';
        while (my $l = <$c>) { last if $l =~ /^\r?\n$/ }
        print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
        close $c;
    }
}
