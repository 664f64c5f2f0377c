defmodule Counter.ServerTest do
  use ExUnit.Case, async: true
  alias Counter.Server

  test "code_change converts 0.1.0's integer up and back down" do
    assert Server.code_change([0], 5, []) == {:ok, {5, 0}}
    assert Server.code_change({:down, [0]}, {5, 3}, []) == {:ok, 5}
  end

  test "bump N and max" do
    {:ok, pid} = GenServer.start_link(Server, :ok)
    assert GenServer.call(pid, {:bump, 3}) == 3
    assert GenServer.call(pid, :bump) == 4
    assert GenServer.call(pid, :max_bump) == 3
  end
end
