#!/usr/bin/perl
# A tiny TCP server for the gate corpus (debian:bookworm-slim has perl but no python, curl or nc).
# Every case gets this folder as ./support/ and bind-mounts this file read-only. Environment:
#   PORT          port to listen on (default 8080)
#   BIND          address to listen on (default 0.0.0.0; 127.0.0.1 = the container's loopback only)
#   MODE          http (default): answers every request with 200 and BODY;
#                 banner: a non-HTTP server (SMTP-like greeting on connect, an SMTP error to
#                 whatever the client sends), the way a mail relay or a database answers
#   BODY          response body (default "ok"), CONTENT_TYPE (default text/plain)
#   BANNER        the greeting in banner mode
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;

$| = 1;
my $port   = $ENV{PORT} // 8080;
my $bind   = $ENV{BIND} // '0.0.0.0';
my $mode   = $ENV{MODE} // 'http';
my $body   = ($ENV{BODY} // 'ok') . "\n";
my $type   = $ENV{CONTENT_TYPE} // 'text/plain';
my $banner = $ENV{BANNER} // "220 relay.internal ESMTP ready\r\n";

$SIG{TERM} = $SIG{INT} = sub { exit 0 };
$SIG{PIPE} = 'IGNORE';

my $server = IO::Socket::INET->new(LocalAddr => $bind, LocalPort => $port, Listen => 64, ReuseAddr => 1, Proto => 'tcp')
  or die "listen on $bind:$port: $!\n";
print "listening on $bind:$port ($mode)\n";

# Reads what the client sends up to the end of its headers, or until it stays silent for 0.5 s
# (a bare TCP connect sends nothing), so that closing never resets a connection with unread data.
sub read_request {
    my ($c) = @_;
    my $sel = IO::Select->new($c);
    my $buf = '';
    while ($buf !~ /\r?\n\r?\n/ && length($buf) < 65536 && $sel->can_read(0.5)) {
        my $n = sysread($c, $buf, 4096, length $buf);
        last unless $n;
    }
    return $buf;
}

while (1) {
    my $c = $server->accept or next;
    if ($mode eq 'banner') {
        syswrite($c, $banner);
        read_request($c);
        syswrite($c, "500 5.5.1 Command unrecognized\r\n");
    } else {
        read_request($c);
        syswrite($c, "HTTP/1.0 200 OK\r\nContent-Type: $type\r\nContent-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body");
    }
    shutdown($c, 1);
    close $c;
}
