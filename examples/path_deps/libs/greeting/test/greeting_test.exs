defmodule GreetingTest do
  use ExUnit.Case

  test "counts greetings per name" do
    assert Greeting.greet("ada") == "hello, ada! (greeting #1)"
    assert Greeting.greet("ada") == "hello, ada! (greeting #2)"
    assert Greeting.greet("bob") == "hello, bob! (greeting #1)"
  end
end
