defmodule PathDeps.RouterTest do
  use ExUnit.Case
  alias PathDeps.Router

  setup_all do
    # `mix test` runs with --no-start; the router needs the counter application.
    {:ok, _} = Application.ensure_all_started(:counter)
    :ok
  end

  test "GET / uses both path dependencies" do
    version = Mix.Project.config()[:version]
    {200, body} = Router.handle("GET", "/")
    assert body =~ ~r/^hello, path_deps! \(greeting #\d+\) path_deps #{version}, request #\d+\n$/
  end

  test "GET /health answers ok" do
    assert Router.handle("GET", "/health") == {200, "ok\n"}
  end
end
