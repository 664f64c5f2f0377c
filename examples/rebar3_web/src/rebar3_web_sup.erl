-module(rebar3_web_sup).
-behaviour(supervisor).
-export([start_link/1, init/1]).

start_link(Port) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Port).

init(Port) ->
    Server = #{id => rebar3_web_server,
               start => {rebar3_web_server, start_link, [Port]},
               restart => permanent},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, [Server]}}.
