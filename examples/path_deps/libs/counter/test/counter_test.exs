defmodule CounterTest do
  use ExUnit.Case

  test "counters are independent and count up from 1" do
    assert Counter.next(:a) == 1
    assert Counter.next(:a) == 2
    assert Counter.next(:b) == 1
  end
end
