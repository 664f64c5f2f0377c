#!/usr/bin/env python3
"""Writes a second small app for the rebuild benchmark (bench/rebuild.sh) into DIR: a plain mix
project of the kind teams write besides Phoenix apps, with a config/runtime.exs (the port from
PORT), a :crypto call on every request, and its own TCP listener (:gen_tcp, no web framework)
that answers each connection with a minimal HTTP 200 (so the benchmark's start check, GET /,
works for it). The benchmark's one-line change is the greeting in lib/tally/listener.ex.
Usage: small_app.py DIR"""
import os
import sys

FILES = {
    "mix.exs": '''defmodule Tally.MixProject do
  use Mix.Project

  def project do
    [app: :tally, version: "0.1.0", elixir: "~> 1.14", start_permanent: Mix.env() == :prod, deps: []]
  end

  def application do
    [extra_applications: [:logger, :crypto], mod: {Tally.Application, []}]
  end
end
''',
    "config/config.exs": '''import Config

config :tally, port: 4000
config :logger, level: :info
''',
    "config/runtime.exs": '''import Config

if port = System.get_env("PORT") do
  config :tally, port: String.to_integer(port)
end
''',
    "lib/tally/application.ex": '''defmodule Tally.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    port = Application.fetch_env!(:tally, :port)
    children = [{Tally.Counter, 0}, {Task, fn -> Tally.Listener.listen(port) end}]
    Supervisor.start_link(children, strategy: :one_for_one, name: Tally.Supervisor)
  end
end
''',
    "lib/tally/counter.ex": '''defmodule Tally.Counter do
  @moduledoc "How many requests were answered."
  use Agent

  def start_link(initial), do: Agent.start_link(fn -> initial end, name: __MODULE__)
  def bump, do: Agent.get_and_update(__MODULE__, &{&1 + 1, &1 + 1})
end
''',
    "lib/tally/listener.ex": '''defmodule Tally.Listener do
  @moduledoc "Accepts TCP connections and answers each with one HTTP response."
  require Logger

  @greeting "tally says hello"

  def listen(port) do
    {:ok, socket} = :gen_tcp.listen(port, [:binary, packet: :line, active: false, reuseaddr: true])
    Logger.info("listening on port #{port}")
    accept(socket)
  end

  defp accept(socket) do
    {:ok, client} = :gen_tcp.accept(socket)
    {:ok, pid} = Task.start(fn -> serve(client) end)
    :ok = :gen_tcp.controlling_process(client, pid)
    accept(socket)
  end

  defp serve(client) do
    request = read_head(client, "")
    body = Tally.Reply.body(@greeting, request, Tally.Counter.bump())
    head = "HTTP/1.1 200 OK\\r\\ncontent-type: text/plain\\r\\ncontent-length: #{byte_size(body)}\\r\\nconnection: close\\r\\n\\r\\n"
    :gen_tcp.send(client, [head, body])
    :gen_tcp.close(client)
  end

  defp read_head(client, acc) do
    case :gen_tcp.recv(client, 0, 5_000) do
      {:ok, "\\r\\n"} -> acc
      {:ok, line} -> read_head(client, acc <> line)
      {:error, _} -> acc
    end
  end
end
''',
    "lib/tally/reply.ex": '''defmodule Tally.Reply do
  @moduledoc "The body of a reply: the greeting, the request count, a digest of the request line."

  def body(greeting, request, count) do
    [line | _] = String.split(request, "\\r\\n", parts: 2)
    digest = :crypto.hash(:sha256, line) |> Base.encode16(case: :lower)
    "#{greeting} (request #{count}, #{binary_part(digest, 0, 16)})\\n"
  end
end
''',
    "test/test_helper.exs": "ExUnit.start()\n",
}


def main():
    root = sys.argv[1]
    for rel, text in FILES.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
