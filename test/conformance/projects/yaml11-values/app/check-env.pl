#!/usr/bin/perl
# Exits 1 when an environment variable does not hold exactly the string the compose file wrote.
use strict;
use warnings;
my %want = (
    FEATURE_NEW_CHECKOUT => 'no', MAINTENANCE_MODE => 'on', SEND_EMAILS => 'yes',
    LAUNCH_DATE => '2015-01-01', UPLOAD_UMASK => '0755', SESSION_TIMEOUT => '1:20',
    RATE_LIMIT => '1e3', FALLBACK_REGION => 'null', LEGACY_SWITCH => 'off', API_VERSION => '1.10',
);
my $bad = 0;
for my $k (sort keys %want) {
    my $got = $ENV{$k};
    if (!defined $got || $got ne $want{$k}) {
        printf "%s: want %s, got %s\n", $k, $want{$k}, defined $got ? $got : '(unset)';
        $bad = 1;
    }
}
print $bad ? "environment changed\n" : "environment intact\n";
exit $bad;
