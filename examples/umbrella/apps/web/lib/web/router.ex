defmodule Web.Router do
  @moduledoc "Maps a request to a status and a plain-text body."

  @spec handle(String.t(), String.t()) :: {pos_integer(), String.t()}
  def handle("GET", "/") do
    greeting = Application.get_env(:web, :greeting, "hello")
    mode = Application.get_env(:web, :server_mode, "start")
    {200, "#{greeting} from web (#{mode})\n"}
  end

  def handle("GET", "/health"), do: {200, "ok\n"}

  # Set by the release's custom rel/env.sh.eex and rel/vm.args.eex.
  def handle("GET", "/env") do
    {200,
     "env.sh=#{System.get_env("UMBRELLA_ENV_SH")} vm.args=#{System.get_env("UMBRELLA_VM_ARGS")}\n"}
  end

  def handle("GET", _path), do: {404, "not found\n"}
  def handle(_method, _path), do: {405, "method not allowed\n"}
end
