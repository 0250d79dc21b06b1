"""A plain transcription of the notebook's cost function, the reference the core must match.

Only the hard-coded sizes are made parameters; the formulas are the notebook's, line by line.
"""

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoi_gradient(z):
    return sigmoid(z) * (1 - sigmoid(z))


def nn_cost_function_backprop(theta_params, X, y, lamda, sizes=(400, 25, 10)):
    n, h, k = sizes
    theta1, theta2 = np.split(theta_params, [h * (n + 1)])
    theta1 = np.reshape(theta1, (h, n + 1))
    theta2 = np.reshape(theta2, (k, h + 1))

    m = X.shape[0]
    a1 = np.c_[np.ones(X.shape[0]), X]

    z2 = theta1.dot(a1.T)
    a2 = np.r_[np.ones((1, z2.shape[1])), sigmoid(z2)]

    z3 = theta2.dot(a2)
    a3 = sigmoid(z3)

    J = (-1 / m) * np.trace(np.log(a3).dot(y) + np.log(1 - a3).dot(1 - y)) + (lamda / (2 * m)) * (
        np.trace((theta1[:, 1:]).T.dot(theta1[:, 1:])) + np.trace((theta2[:, 1:]).T.dot(theta2[:, 1:]))
    )

    delta3 = a3.T - y
    delta2 = theta2[:, 1:].T.dot(delta3.T) * sigmoi_gradient(z2)

    D1 = delta2.dot(a1)
    D2 = delta3.T.dot(a2.T)

    theta1_reg = np.c_[np.zeros((theta1.shape[0], 1)), theta1[:, 1:]]
    theta2_reg = np.c_[np.zeros((theta2.shape[0], 1)), theta2[:, 1:]]

    theta1_grad = D1 / m + (theta1_reg * lamda) / m
    theta2_grad = D2 / m + (theta2_reg * lamda) / m

    grad = np.r_[theta1_grad.ravel(), theta2_grad.ravel()]
    return J, grad
