# elf_groups.pl REL MUSL LIST: groups the ELF files named in LIST (one path a line, relative to
# REL) by the question they ask the dynamic loader, so that minimal_base.sh runs ldd once a group
# (each loader run costs 0.1-0.2 s under emulation). Prints "GROUP<TAB>PATH" a file, in the order
# of LIST. Two files are in one group only when everything the answer of ldd depends on is the
# same: machine, class, byte order and type; the program interpreter; having a dynamic section;
# the dynamic entries that name or steer the libraries (NEEDED, SONAME, RPATH, RUNPATH, FLAGS,
# FLAGS_1, AUXILIARY, FILTER) in their order; with MUSL=1, whether the file names a glibc file
# (then minimal_base.sh asks the ldd of glibc, else that of musl); and the directory of the file
# when a name or a search path has a "$" (ORIGIN) or a name has a "/". A file this cannot read is
# a group of its own ("u" groups). Nothing is written but the output.
# Free of single quotes: minimal_base.sh holds it in a single-quoted shell variable.
use strict;
use warnings;

my ($rel, $musl, $list) = @ARGV;
open(my $names, "<", $list) or die "cannot read $list: $!\n";
my (%group, $groups, $alone);
while (my $name = <$names>) {
    chomp $name;
    my $key = eval { key("$rel/$name", $name) };
    my $id = defined $key ? ($group{$key} //= "g" . ++$groups) : "u" . ++$alone;
    print "$id\t$name\n";
}
close $names;

sub key {
    my ($path, $name) = @_;
    open(my $fh, "<:raw", $path) or return undef;
    # Only the parts the key is made of are read (the header, the program headers, the dynamic
    # section and the string table): a whole beam.smp read under emulation costs a tenth of a
    # second. With MUSL=1 the whole file is searched for glibc names, so it is read whole.
    my $size = -s $fh;
    my $whole = $musl ? do { local $/; <$fh> } : undef;
    my $at = sub {
        my ($off, $len) = @_;
        die "short\n" if $off + $len > $size;
        return substr($whole, $off, $len) if defined $whole;
        my $got = "";
        sysseek($fh, $off, 0) or die "seek\n";
        while (length($got) < $len) {
            my $n = sysread($fh, $got, $len - length($got), length($got));
            die "short\n" unless $n;
        }
        return $got;
    };
    return undef unless $size >= 64 && $at->(0, 4) eq "\x7fELF";
    my ($class, $data) = unpack("C C", $at->(4, 2));
    return undef unless ($class == 1 || $class == 2) && ($data == 1 || $data == 2);
    my ($h, $w) = $data == 1 ? ("v", "V") : ("n", "N");
    my $a = $class == 1 ? $w : ($data == 1 ? "Q<" : "Q>");
    my $field = sub { my ($off, $fmt, $len) = @_; unpack($fmt, $at->($off, $len)) };
    my ($type, $machine) = ($field->(16, $h, 2), $field->(18, $h, 2));
    my ($phoff, $phentsize, $phnum) = $class == 2
        ? ($field->(32, $a, 8), $field->(54, $h, 2), $field->(56, $h, 2))
        : ($field->(28, $a, 4), $field->(42, $h, 2), $field->(44, $h, 2));
    my $asize = $class == 2 ? 8 : 4;
    my (@load, $interp, $dynamic);
    for my $i (0 .. $phnum - 1) {
        my $o = $phoff + $i * $phentsize;
        my $pt = $field->($o, $w, 4);
        my ($off, $vaddr, $filesz) = $class == 2
            ? ($field->($o + 8, $a, 8), $field->($o + 16, $a, 8), $field->($o + 32, $a, 8))
            : ($field->($o + 4, $a, 4), $field->($o + 8, $a, 4), $field->($o + 16, $a, 4));
        if ($pt == 1) { push @load, [$vaddr, $off, $filesz] }
        elsif ($pt == 2) { $dynamic = [$off, $filesz] }
        elsif ($pt == 3) { ($interp = $at->($off, $filesz)) =~ s/\0.*//s }
    }
    my @parts = ("machine=$machine class=$class data=$data type=$type", "interp=" . ($interp // "-"));
    my $origin = 0;
    if ($dynamic) {
        my (@entries, $strtab, $strsz);
        for (my $o = $dynamic->[0]; $o + 2 * $asize <= $dynamic->[0] + $dynamic->[1]; $o += 2 * $asize) {
            my ($tag, $val) = ($field->($o, $a, $asize), $field->($o + $asize, $a, $asize));
            last if $tag == 0;
            $strtab = $val if $tag == 5;
            $strsz = $val if $tag == 10;
            push @entries, [$tag, $val];
        }
        die "no string table\n" unless defined $strtab;
        my ($base) = grep { $strtab >= $_->[0] && $strtab < $_->[0] + $_->[2] } @load;
        die "string table outside the file\n" unless $base;
        my $strings = $strtab - $base->[0] + $base->[1];
        die "string table outside the file\n" if $strings >= $size;
        my $left = $size - $strings;
        my $table = $at->($strings, defined $strsz && $strsz < $left ? $strsz : $left);
        my %string = map { $_ => 1 } (1, 14, 15, 29, 0x7ffffffd, 0x7fffffff);
        my %number = map { $_ => 1 } (30, 0x6ffffffb);
        push @parts, "dynamic";
        for my $e (@entries) {
            my ($tag, $val) = @$e;
            if ($string{$tag}) {
                die "string outside the table\n" if $val >= length $table;
                my $end = index($table, "\0", $val);
                die "unterminated string\n" if $end < 0;
                my $s = substr($table, $val, $end - $val);
                $origin = 1 if $s =~ /\$/ || ($tag == 1 && $s =~ m{/});
                push @parts, "$tag=$s";
            } elsif ($number{$tag}) {
                push @parts, "$tag=$val";
            }
        }
    }
    if ($musl) {
        push @parts, "glibc=" . ((index($whole, "libc.so.6") >= 0 || index($whole, "ld-linux") >= 0) ? 1 : 0);
    }
    if ($origin) {
        (my $dir = $name) =~ s{/[^/]*$}{};
        push @parts, "dir=$dir";
    }
    return join("\n", @parts);
}
