defmodule Worker.TickerTest do
  use ExUnit.Case, async: true

  test "ticks" do
    start_supervised!(Worker.Ticker)
    assert Worker.Ticker.ticks() >= 0
  end
end
