use strict; use warnings;
my %h; my $acc = 0;
for my $i (1 .. 1200000) {
  my $s = join(",", map { $_ * $i % 97 } 1 .. 6);
  if ($s =~ /(\d+),(\d+)$/) { $acc = ($acc + $1 * $2) % 1000003; }
  $h{$i % 7001} .= substr($s, 0, 3);
  $h{$i % 7001} = length($h{$i % 7001}) if length($h{$i % 7001}) > 200;
}
my @k = sort { $h{$a} cmp $h{$b} || $a <=> $b } keys %h;
print "$acc $#k $k[0] $k[-1]\n";
