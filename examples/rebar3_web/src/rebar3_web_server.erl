%% A minimal HTTP/1.1 server: one request per connection, one process per connection.
-module(rebar3_web_server).
-export([start_link/1, init/1, handle/2]).

start_link(Port) ->
    proc_lib:start_link(?MODULE, init, [Port]).

init(Port) ->
    {ok, Listen} = gen_tcp:listen(Port, [binary, {packet, http_bin}, {active, false}, {reuseaddr, true}]),
    proc_lib:init_ack({ok, self()}),
    accept(Listen).

accept(Listen) ->
    {ok, Conn} = gen_tcp:accept(Listen),
    Pid = spawn(fun() -> receive go -> serve(Conn) end end),
    ok = gen_tcp:controlling_process(Conn, Pid),
    Pid ! go,
    accept(Listen).

serve(Conn) ->
    case gen_tcp:recv(Conn, 0, 5000) of
        {ok, {http_request, Method, {abs_path, Path}, _}} ->
            ok = skip_headers(Conn),
            [P | _] = binary:split(Path, <<"?">>),
            {Status, Body} = handle(Method, P),
            gen_tcp:send(Conn, response(Status, Body));
        _ ->
            ok
    end,
    gen_tcp:close(Conn).

skip_headers(Conn) ->
    case gen_tcp:recv(Conn, 0, 5000) of
        {ok, http_eoh} -> ok;
        {ok, {http_header, _, _, _, _}} -> skip_headers(Conn);
        Other -> {error, Other}
    end.

%% The greeting comes from sys.config (rendered from config/sys.config.src at boot).
handle('GET', <<"/">>) ->
    {ok, Vsn} = application:get_key(rebar3_web, vsn),
    Greeting = case application:get_env(rebar3_web, greeting, "") of
                   "" -> "hello";
                   G -> G
               end,
    {200, io_lib:format("~s from rebar3_web ~s~n", [Greeting, Vsn])};
handle('GET', <<"/health">>) ->
    {200, <<"ok\n">>};
handle('GET', _) ->
    {404, <<"not found\n">>};
handle(_, _) ->
    {405, <<"method not allowed\n">>}.

response(Status, Body) ->
    B = iolist_to_binary(Body),
    [<<"HTTP/1.1 ">>, integer_to_binary(Status), <<" ">>, reason(Status), <<"\r\n">>,
     <<"content-type: text/plain; charset=utf-8\r\n">>,
     <<"content-length: ">>, integer_to_binary(byte_size(B)), <<"\r\n">>,
     <<"connection: close\r\n\r\n">>, B].

reason(200) -> <<"OK">>;
reason(404) -> <<"Not Found">>;
reason(405) -> <<"Method Not Allowed">>.
