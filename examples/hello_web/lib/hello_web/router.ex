defmodule HelloWeb.Router do
  @moduledoc "Maps a request to a status and a plain-text body."

  @spec handle(String.t(), String.t()) :: {pos_integer(), String.t()}
  def handle("GET", "/"), do: {200, "hello from hello_web #{version()}\n"}
  def handle("GET", "/health"), do: {200, "ok\n"}
  def handle("GET", _path), do: {404, "not found\n"}
  def handle(_method, _path), do: {405, "method not allowed\n"}

  def version, do: Application.spec(:hello_web, :vsn) |> to_string()
end
