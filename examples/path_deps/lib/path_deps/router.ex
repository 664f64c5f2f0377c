defmodule PathDeps.Router do
  @moduledoc "Maps a request to a status and a plain-text body, using both path dependencies."

  @spec handle(String.t(), String.t()) :: {pos_integer(), String.t()}
  def handle("GET", "/") do
    request = Counter.next(:requests)
    {200, "#{Greeting.greet("path_deps")} path_deps #{version()}, request ##{request}\n"}
  end

  def handle("GET", "/health"), do: {200, "ok\n"}
  def handle("GET", _path), do: {404, "not found\n"}
  def handle(_method, _path), do: {405, "method not allowed\n"}

  def version, do: Application.spec(:path_deps, :vsn) |> to_string()
end
