defmodule Counter.ProtocolTest do
  use ExUnit.Case, async: false
  alias Counter.Protocol

  setup do
    start_supervised!(Counter.Server)
    :ok
  end

  test "get, bump, bump N and max" do
    assert Protocol.handle("get") == "0"
    assert Protocol.handle("bump") == "1"
    assert Protocol.handle("bump 4") == "5"
    assert Protocol.handle("max") == "4"
    assert Protocol.handle("bump 0") =~ "error"
  end
end
