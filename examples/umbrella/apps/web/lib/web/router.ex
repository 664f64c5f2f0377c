defmodule Web.Router do
  @moduledoc "Maps a request to a status and a plain-text body."

  @spec handle(String.t(), String.t()) :: {pos_integer(), String.t()}
  def handle("GET", "/") do
    greeting = Application.get_env(:web, :greeting, "hello")
    mode = Application.get_env(:web, :server_mode, "start")
    {200, "#{greeting} from web (#{mode})\n"}
  end

  def handle("GET", "/health"), do: {200, "ok\n"}
  def handle("GET", _path), do: {404, "not found\n"}
  def handle(_method, _path), do: {405, "method not allowed\n"}
end
