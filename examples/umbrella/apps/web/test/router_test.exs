defmodule Web.RouterTest do
  use ExUnit.Case, async: true

  test "GET / greets" do
    assert {200, body} = Web.Router.handle("GET", "/")
    assert body =~ "from web"
  end

  test "GET /health" do
    assert Web.Router.handle("GET", "/health") == {200, "ok\n"}
  end

  test "unknown paths and methods" do
    assert {404, _} = Web.Router.handle("GET", "/nope")
    assert {405, _} = Web.Router.handle("POST", "/")
  end
end
