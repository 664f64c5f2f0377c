defmodule HelloWeb.RouterTest do
  use ExUnit.Case, async: true
  alias HelloWeb.Router

  test "GET / greets with the version" do
    version = Mix.Project.config()[:version]
    assert Router.handle("GET", "/") == {200, "hello from hello_web #{version}\n"}
  end

  test "GET /health answers ok" do
    assert Router.handle("GET", "/health") == {200, "ok\n"}
  end

  test "unknown paths and methods are refused" do
    assert {404, _} = Router.handle("GET", "/nope")
    assert {405, _} = Router.handle("POST", "/")
  end
end
