#!/usr/bin/env escript
%% release-oci (docs/hot-upgrades.md): the relup of a hot upgrade, run in the builder image (the
%% Erlang/OTP both releases were built with). The working directory holds old/ and new/: each
%% release's releases/VSN/NAME.rel and lib/APP-VSN/ebin/APP.app (new/ also the appups). The relup
%% goes to stdout between two marker lines; warnings and errors to stderr.
main([Name, From, To]) ->
    Old = filename:join(["old", "releases", From, Name]),
    New = filename:join(["new", "releases", To, Name]),
    Path = filelib:wildcard("new/lib/*/ebin") ++ filelib:wildcard("old/lib/*/ebin"),
    ok = filelib:ensure_dir("out/relup"),
    Opts = [{path, Path}, {outdir, "out"}, silent, no_warn_sasl],
    case systools:make_relup(New, [Old], [Old], Opts) of
        {ok, _Relup, Mod, Warnings} ->
            [io:format(standard_error, "warning: ~ts~n", [Mod:format_warning(W)]) || W <- Warnings],
            {ok, Bin} = file:read_file("out/relup"),
            io:put_chars(["---- release-oci relup ----\n", Bin, "---- release-oci end ----\n"]),
            halt(0);
        {error, Mod, Error} ->
            io:format(standard_error, "systools:make_relup failed: ~ts~n", [Mod:format_error(Error)]),
            halt(1);
        Other ->
            io:format(standard_error, "systools:make_relup failed: ~p~n", [Other]),
            halt(1)
    end;
main(_) ->
    io:format(standard_error, "usage: relup.escript NAME FROM TO~n", []),
    halt(2).
