%% Starts the listener (port 4000 or $PORT) and logs when the application stops, so a
%% graceful `docker stop` is visible in the container's log.
-module(rebar3_web_app).
-behaviour(application).
-export([start/2, prep_stop/1, stop/1]).

start(_Type, _Args) ->
    Port = list_to_integer(os:getenv("PORT", "4000")),
    logger:info("rebar3_web listening on port ~b", [Port]),
    io:format("rebar3_web listening on port ~b~n", [Port]),
    rebar3_web_sup:start_link(Port).

prep_stop(State) ->
    io:format("rebar3_web: application stopping~n"),
    State.

stop(_State) ->
    io:format("rebar3_web: application stopped~n"),
    ok.
