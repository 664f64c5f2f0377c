defmodule Counter.ProtocolTest do
  use ExUnit.Case, async: false
  alias Counter.Protocol

  setup do
    start_supervised!(Counter.Server)
    :ok
  end

  test "get and bump" do
    assert Protocol.handle("get") == "0"
    assert Protocol.handle("bump") == "1"
    assert Protocol.handle("bump") == "2"
    assert Protocol.handle("get") == "2"
  end

  test "unknown commands are answered with an error" do
    assert Protocol.handle("bump 3") =~ "error"
  end
end
