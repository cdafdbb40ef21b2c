# Reference values for linear mixed models, computed with R's lme4::lmer and nlme::lme.
#
# Run from the repository root:   Rscript tests/reference/mixed.R
# (the script finds its own folder, so any working directory works).
#
# Outputs (in this folder) ---------------------------------------------------------------
#   mixed_sleepstudy.csv   Reaction, Days, Subject            (lme4::sleepstudy, 180 rows)
#   mixed_orthodont.csv    distance, age, Subject, Sex        (nlme::Orthodont, 108 rows)
#   mixed_chickweight.csv  weight, Time, Chick, Diet          (datasets::ChickWeight, 578 rows)
#   mixed_values.csv       dataset, model, engine, quantity, term, value   (long, 17 sig. digits)
#   mixed_warnings.csv     dataset, model, engine, warning    (every warning/message R gave
#                                                              for a recorded fit)
# The fits are made on the data as read back from the CSVs.
#
# Factors: Subject, Chick are plain strings (R sorts the levels alphabetically; this only
# orders the ranef rows).  Sex has the levels of nlme::Orthodont, Male then Female, so Male
# is the reference level and the terms are SexFemale, age:SexFemale.  Diet has levels
# "1".."4", reference "1".
#
# Models (dataset, model: lme4 formula; nlme fixed / random):
#   sleepstudy  int_slope        Reaction ~ Days + (Days | Subject)        REML
#   sleepstudy  int_only         Reaction ~ Days + (1 | Subject)           REML
#   sleepstudy  int_slope_ml     Reaction ~ Days + (Days | Subject)        ML
#   sleepstudy  int_slope_years  Reaction ~ Years + (Years | Subject)      REML,
#                                Years = Days / 365.25 (computed in R from the CSV's Days)
#   orthodont   int_slope        distance ~ age * Sex + (age | Subject)    REML
#   chickweight int_slope        weight ~ Time * Diet + (Time | Chick)     REML
#   chickweight quad             weight ~ poly(Time, 2, raw = TRUE) + Diet +
#                                         (Time + I(Time^2) | Chick)       REML, lme4 only
#
# quantity (term):
#   fixef, fixef_se (R's coefficient name)    estimate; sqrt(diag(vcov(fit)))
#   sd (random-effect term)                   random-effect standard deviation
#   corr ("a|b")                              random-effect correlation, each pair once
#   sigma (residual)                          residual standard deviation
#   loglik (REML or ML)                       as.numeric(logLik(fit))
#   reml_criterion (REML or ML)               lme4 only: REMLcrit(fit) for REML fits,
#                                             deviance(fit) for the ML fit (= -2 loglik)
#   logdet_xtx ()                             log det(X'X) of the fixed-effects design: add
#                                             half of it to loglik (REML) to get the REML
#                                             log-likelihood that includes +1/2 log|X'X|
#   nobs (), ngroups (grouping factor)
#   ranef ("<Subject>:<effect>")              conditional modes, sleepstudy int_slope only
#
# REML log-likelihood (both engines, checked below for every fit from the formula):
#   l_R = -1/2 [ (n-p) log(2 pi) + log|V| + log|X'V^-1 X| + r'V^-1 r ],
#   V = Z G Z' + sigma^2 I, r = y - X beta_hat (beta_hat the GLS estimate).
#   No +1/2 log|X'X| term, so l_R changes by -sum(log c_j) when column j of X is scaled by
#   c_j (int_slope_years vs int_slope).  ML:  l = -1/2 [ n log(2 pi) + log|V| + r'V^-1 r ].
#
# Optimisation: lme4 uses bobyqa (rhoend = 1e-12).  The script also fits with nloptwrap and
# Nelder_Mead at tight tolerances; if either finds a lower criterion (by > 1e-9), bobyqa is
# restarted from that point and the restart is recorded.  nlme is fitted with nlminb and
# with optim (tight lmeControl); the one with the larger log-likelihood is recorded (a tie
# within 1e-12 goes to the one with fewer warnings, then to nlminb).

suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
out_dir <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()

cat(R.version.string, "\n")
for (p in c("lme4", "nlme", "Matrix")) cat(p, as.character(packageVersion(p)), "\n")

fmt <- function(x) sprintf("%.17g", x)
csv_field <- function(x) {
  x <- as.character(x)
  need <- grepl("[\",\n]", x)
  x[need] <- paste0("\"", gsub("\"", "\"\"", x[need]), "\"")
  x
}
write_table <- function(df, file) {
  lines <- c(paste(csv_field(names(df)), collapse = ","),
             if (nrow(df)) do.call(paste, c(lapply(df, csv_field), sep = ",")))
  con <- file(file.path(out_dir, file), "wb")
  writeLines(lines, con, sep = "\n")
  close(con)
}

# ---------------------------------------------------------------------------------------
# Input data
# ---------------------------------------------------------------------------------------
sleep_src <- data.frame(Reaction = lme4::sleepstudy$Reaction, Days = lme4::sleepstudy$Days,
                        Subject = as.character(lme4::sleepstudy$Subject),
                        stringsAsFactors = FALSE)
ortho_src <- data.frame(distance = nlme::Orthodont$distance, age = nlme::Orthodont$age,
                        Subject = as.character(nlme::Orthodont$Subject),
                        Sex = as.character(nlme::Orthodont$Sex), stringsAsFactors = FALSE)
chick_src <- data.frame(weight = datasets::ChickWeight$weight, Time = datasets::ChickWeight$Time,
                        Chick = as.character(datasets::ChickWeight$Chick),
                        Diet = as.character(datasets::ChickWeight$Diet),
                        stringsAsFactors = FALSE)
stopifnot(identical(levels(nlme::Orthodont$Sex), c("Male", "Female")),
          setequal(chick_src$Diet, c("1", "2", "3", "4")))

num_text <- function(x) {
  s <- trimws(formatC(x, digits = 15, format = "g"))
  stopifnot(identical(as.numeric(s), as.numeric(x)))   # exact round trip
  s
}
write_input <- function(d, file) {
  for (v in names(d)) if (is.numeric(d[[v]])) d[[v]] <- num_text(d[[v]])
  write_table(d, file)
}
write_input(sleep_src, "mixed_sleepstudy.csv")
write_input(ortho_src, "mixed_orthodont.csv")
write_input(chick_src, "mixed_chickweight.csv")

read_back <- function(file, chr) {
  cls <- setNames(rep("character", length(chr)), chr)
  read.csv(file.path(out_dir, file), colClasses = cls, stringsAsFactors = FALSE)
}
sleep <- read_back("mixed_sleepstudy.csv", "Subject")
ortho <- read_back("mixed_orthodont.csv", c("Subject", "Sex"))
chick <- read_back("mixed_chickweight.csv", c("Chick", "Diet"))
stopifnot(isTRUE(all.equal(sleep, sleep_src, tolerance = 0)),
          isTRUE(all.equal(ortho, ortho_src, tolerance = 0)),
          isTRUE(all.equal(chick, chick_src, tolerance = 0)))
sleep$Subject <- factor(sleep$Subject)
sleep$Years <- sleep$Days / 365.25
ortho$Subject <- factor(ortho$Subject)
ortho$Sex <- factor(ortho$Sex, levels = c("Male", "Female"))
chick$Chick <- factor(chick$Chick)
chick$Diet <- factor(chick$Diet, levels = c("1", "2", "3", "4"))
cat(sprintf("sleepstudy %d rows, orthodont %d rows, chickweight %d rows\n",
            nrow(sleep), nrow(ortho), nrow(chick)))

# ---------------------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------------------
specs <- list(
  list(dataset = "sleepstudy", model = "int_slope", data = sleep, reml = TRUE,
       lme4 = Reaction ~ Days + (Days | Subject), fixed = Reaction ~ Days,
       random = ~ Days | Subject, ranef = TRUE, nlme = TRUE),
  list(dataset = "sleepstudy", model = "int_only", data = sleep, reml = TRUE,
       lme4 = Reaction ~ Days + (1 | Subject), fixed = Reaction ~ Days,
       random = ~ 1 | Subject, ranef = FALSE, nlme = TRUE),
  list(dataset = "sleepstudy", model = "int_slope_ml", data = sleep, reml = FALSE,
       lme4 = Reaction ~ Days + (Days | Subject), fixed = Reaction ~ Days,
       random = ~ Days | Subject, ranef = FALSE, nlme = TRUE),
  list(dataset = "sleepstudy", model = "int_slope_years", data = sleep, reml = TRUE,
       lme4 = Reaction ~ Years + (Years | Subject), fixed = Reaction ~ Years,
       random = ~ Years | Subject, ranef = FALSE, nlme = TRUE),
  list(dataset = "orthodont", model = "int_slope", data = ortho, reml = TRUE,
       lme4 = distance ~ age * Sex + (age | Subject), fixed = distance ~ age * Sex,
       random = ~ age | Subject, ranef = FALSE, nlme = TRUE),
  list(dataset = "chickweight", model = "int_slope", data = chick, reml = TRUE,
       lme4 = weight ~ Time * Diet + (Time | Chick), fixed = weight ~ Time * Diet,
       random = ~ Time | Chick, ranef = FALSE, nlme = TRUE),
  # nlme cannot reach this fit's optimum (see the README): it is fitted only as a
  # diagnostic and not recorded.
  list(dataset = "chickweight", model = "quad", data = chick, reml = TRUE,
       lme4 = weight ~ poly(Time, 2, raw = TRUE) + Diet + (Time + I(Time^2) | Chick),
       fixed = weight ~ poly(Time, 2, raw = TRUE) + Diet,
       random = ~ Time + I(Time^2) | Chick, ranef = FALSE, nlme = FALSE))

# Run expr, collecting warnings and messages (muffled, echoed to stdout).
capture <- function(expr) {
  notes <- character()
  value <- withCallingHandlers(expr,
    warning = function(w) {
      notes <<- c(notes, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      notes <<- c(notes, paste0("message: ", trimws(conditionMessage(m))))
      invokeRestart("muffleMessage")
    })
  notes <- gsub("[[:space:]]+", " ", trimws(notes))
  for (n in notes) cat("   R said:", n, "\n")
  list(value = value, notes = notes)
}

lme4_ctrl <- list(
  bobyqa = list(rhoend = 1e-12, maxfun = 1e5),
  nloptwrap = list(xtol_abs = 1e-14, ftol_abs = 1e-16, xtol_rel = 0, ftol_rel = 0,
                   maxeval = 1e5),
  Nelder_Mead = list(FtolAbs = 1e-14, FtolRel = 1e-15, XtolRel = 1e-12, maxfun = 1e5))
crit_of <- function(fit) if (isREML(fit)) REMLcrit(fit) else deviance(fit)

fit_lme4 <- function(s) {
  run <- function(optimizer, start = NULL) {
    lmer(s$lme4, data = s$data, REML = s$reml, start = start,
         control = lmerControl(optimizer = optimizer, optCtrl = lme4_ctrl[[optimizer]]))
  }
  main <- capture(run("bobyqa"))
  crit <- crit_of(main$value)
  alt <- sapply(c("nloptwrap", "Nelder_Mead"), function(o) {
    f <- suppressWarnings(suppressMessages(run(o)))
    c(crit = crit_of(f), theta = getME(f, "theta"))
  })
  cat(sprintf("   lme4 criterion: bobyqa %.12f, nloptwrap %+.3g, Nelder_Mead %+.3g\n", crit,
              alt["crit", "nloptwrap"] - crit, alt["crit", "Nelder_Mead"] - crit))
  restart <- NULL
  best <- which.min(alt["crit", ])
  if (alt["crit", best] < crit - 1e-9) {
    restart <- list(crit_default = crit, from = colnames(alt)[best])
    cat("   bobyqa from lme4's default start stopped at a worse point; restarting from the",
        restart$from, "solution.  The default-start bobyqa fit was:\n")
    print(VarCorr(main$value), digits = 8)
    print(fixef(main$value), digits = 8)
    main <- capture(run("bobyqa", start = list(theta = alt[-1, best])))
    crit <- crit_of(main$value)
  }
  stopifnot(crit <= min(alt["crit", ]) + 1e-9)
  theta <- getME(main$value, "theta")
  # nloptwrap's theta vs bobyqa's: an estimate of the parameter accuracy
  spread <- max(abs(alt[-1, "nloptwrap"] - theta)) / max(abs(theta))
  cat(sprintf("   lme4 theta: max |nloptwrap - bobyqa| / max|theta| = %.2g\n", spread))
  c(main, list(restart = restart, crit = crit, theta_spread = spread))
}

fit_nlme <- function(s) {
  run <- function(opt) {
    ctrl <- lmeControl(maxIter = 1000, msMaxIter = 1000, msMaxEval = 10000, niterEM = 1000,
                       tolerance = 1e-12, msTol = 1e-14, opt = opt, returnObject = TRUE)
    capture(lme(s$fixed, random = s$random, data = s$data,
                method = if (s$reml) "REML" else "ML", control = ctrl))
  }
  fits <- list(nlminb = run("nlminb"), optim = run("optim"))
  ll <- sapply(fits, function(f) as.numeric(logLik(f$value)))
  # larger log-likelihood wins; a tie (within 1e-12) goes to the fit with fewer warnings,
  # then to nlminb (lme's default)
  nw <- sapply(fits, function(f) length(f$notes))
  better <- ll["optim"] > ll["nlminb"] + 1e-12 ||
    (abs(ll["optim"] - ll["nlminb"]) <= 1e-12 && nw["optim"] < nw["nlminb"])
  pick <- if (better) "optim" else "nlminb"
  cat(sprintf("   nlme loglik: nlminb %.12f, optim %+.3g; recorded: %s\n", ll["nlminb"],
              ll["optim"] - ll["nlminb"], pick))
  c(fits[[pick]], list(opt = pick))
}

# Uniform summary of a fit.
summarise <- function(engine, fit) {
  if (engine == "lme4") {
    vc <- VarCorr(fit)
    G <- vc[[1]]
    G <- matrix(as.numeric(G), nrow(G), dimnames = dimnames(G))
    re <- ranef(fit)[[1]]
    list(fixef = fixef(fit), se = sqrt(diag(as.matrix(vcov(fit)))), G = G,
         sigma = sigma(fit), loglik = as.numeric(logLik(fit)), nobs = nobs(fit),
         ngroups = ngrps(fit), ranef = as.matrix(re))
  } else {
    G <- getVarCov(fit)
    G <- matrix(as.numeric(G), nrow(G), dimnames = dimnames(G))
    ng <- fit$dims$ngrps[[1]]
    names(ng) <- names(fit$dims$ngrps)[1]
    list(fixef = fixef(fit), se = sqrt(diag(vcov(fit))), G = G, sigma = fit$sigma,
         loglik = as.numeric(logLik(fit)), nobs = fit$dims$N, ngroups = ng,
         ranef = as.matrix(ranef(fit)))
  }
}

# REML / ML log-likelihood from the formula in the header, at the fit's G and sigma.
formula_loglik <- function(s, sm) {
  d <- s$data
  X <- model.matrix(s$fixed, d)
  y <- model.response(model.frame(s$fixed, d))
  re_rhs <- as.formula(paste("~", deparse(s$random[[2]][[2]])))
  Zr <- model.matrix(re_rhs, d)
  g <- d[[deparse(s$random[[2]][[3]])]]
  stopifnot(identical(colnames(Zr), colnames(sm$G)))
  n <- nrow(X); p <- ncol(X)
  V <- diag(sm$sigma^2, n)
  for (lev in unique(g)) {
    i <- which(g == lev)
    V[i, i] <- V[i, i] + Zr[i, , drop = FALSE] %*% sm$G %*% t(Zr[i, , drop = FALSE])
  }
  cV <- chol(V)
  logdetV <- 2 * sum(log(diag(cV)))
  Xs <- backsolve(cV, X, transpose = TRUE)
  ys <- backsolve(cV, y, transpose = TRUE)
  XtVX <- crossprod(Xs)
  beta <- solve(XtVX, crossprod(Xs, ys))
  r <- ys - Xs %*% beta
  q <- sum(r^2)
  ld_xvx <- as.numeric(determinant(XtVX)$modulus)
  list(reml = -0.5 * ((n - p) * log(2 * pi) + logdetV + ld_xvx + q),
       ml = -0.5 * (n * log(2 * pi) + logdetV + q),
       beta = drop(beta), logdet_xtx = as.numeric(determinant(crossprod(X))$modulus))
}

rows <- list()
add <- function(s, engine, quantity, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(dataset = s$dataset, model = s$model,
                                          engine = engine, quantity = quantity,
                                          term = term, value = fmt(value),
                                          stringsAsFactors = FALSE)
}
warn_rows <- list()
summaries <- list()
checks <- list()

for (s in specs) {
  key <- paste(s$dataset, s$model)
  cat("\n==", key, if (s$reml) "(REML)" else "(ML)", "\n")
  fl <- fit_lme4(s)
  engines <- list(lme4 = fl)
  fn <- fit_nlme(s)
  if (s$nlme) {
    engines$nlme <- fn
  } else {
    cat(sprintf("   nlme NOT recorded: its -2 loglik %.9f vs lme4 criterion %.9f\n",
                -2 * as.numeric(logLik(fn$value)), fl$crit))
  }
  for (engine in names(engines)) {
    e <- engines[[engine]]
    sm <- summarise(engine, e$value)
    summaries[[key]][[engine]] <- sm
    for (note in e$notes)
      warn_rows[[length(warn_rows) + 1]] <- data.frame(dataset = s$dataset, model = s$model,
                                                       engine = engine, warning = note)
    lab <- if (s$reml) "REML" else "ML"
    add(s, engine, "fixef", names(sm$fixef), sm$fixef)
    add(s, engine, "fixef_se", names(sm$se), sm$se)
    sds <- sqrt(diag(sm$G))
    add(s, engine, "sd", names(sds), sds)
    if (length(sds) > 1) {
      R <- cov2cor(sm$G)
      for (j in seq_len(ncol(R) - 1)) for (k in (j + 1):ncol(R))
        add(s, engine, "corr", paste0(colnames(R)[j], "|", colnames(R)[k]), R[j, k])
    }
    add(s, engine, "sigma", "residual", sm$sigma)
    add(s, engine, "loglik", lab, sm$loglik)
    if (engine == "lme4") add(s, engine, "reml_criterion", lab, e$crit)
    fm <- formula_loglik(s, sm)
    if (s$reml) add(s, engine, "logdet_xtx", "", fm$logdet_xtx)
    add(s, engine, "nobs", "", sm$nobs)
    add(s, engine, "ngroups", names(sm$ngroups), sm$ngroups)
    if (s$ranef) {
      re <- sm$ranef
      for (j in seq_len(ncol(re)))
        add(s, engine, "ranef", paste0(rownames(re), ":", colnames(re)[j]), re[, j])
    }
    # checks: the formula gives logLik and the GLS beta at the fit's variance parameters
    ll_formula <- if (s$reml) fm$reml else fm$ml
    checks[[length(checks) + 1]] <- data.frame(
      fit = key, engine = engine, loglik = sm$loglik, formula_minus_loglik = ll_formula - sm$loglik,
      with_logdet_xtx = ll_formula + 0.5 * fm$logdet_xtx,
      beta_rel = max(abs(fm$beta - sm$fixef) / abs(sm$fixef)))
    stopifnot(abs(ll_formula - sm$loglik) < 1e-8, max(abs(fm$beta - sm$fixef) / abs(sm$fixef)) < 1e-8)
  }
  # lme4's criterion evaluated at nlme's variance parameters equals nlme's -2 loglik
  if (s$nlme) {
    sn <- summaries[[key]]$nlme
    L <- t(chol(sn$G / sn$sigma^2))
    devfun <- lmer(s$lme4, data = s$data, REML = s$reml, devFunOnly = TRUE)
    d_at_nlme <- devfun(L[lower.tri(L, diag = TRUE)])
    cat(sprintf("   lme4 criterion at nlme's theta %.12f, nlme -2 loglik %.12f (diff %.2g)\n",
                d_at_nlme, -2 * sn$loglik, d_at_nlme + 2 * sn$loglik))
    stopifnot(abs(d_at_nlme + 2 * sn$loglik) < 1e-8)
  }
  if (!is.null(fl$restart))
    cat(sprintf("   bobyqa default start: criterion %.9f; restart: %.9f\n",
                fl$restart$crit_default, fl$crit))
}

values <- do.call(rbind, rows)
write_table(values, "mixed_values.csv")
warns <- if (length(warn_rows)) do.call(rbind, warn_rows) else
  data.frame(dataset = character(), model = character(), engine = character(),
             warning = character())
write_table(warns, "mixed_warnings.csv")

# ---------------------------------------------------------------------------------------
# Summaries printed for the README
# ---------------------------------------------------------------------------------------
cat("\nLog-likelihood formula check (formula - logLik, and the value with +1/2 log|X'X|):\n")
print(do.call(rbind, checks), digits = 15, row.names = FALSE)

rel <- function(a, b) max(abs(a - b) / abs(b))
cat("\nlme4 vs nlme (max relative differences; fixef_per_se: max |diff| / se; corr and loglik",
    "absolute; ranef: max |diff| / max |ranef| per effect):\n")
agree <- do.call(rbind, lapply(names(summaries), function(key) {
  sm <- summaries[[key]]
  if (is.null(sm$nlme)) return(NULL)
  a <- sm$lme4; b <- sm$nlme
  data.frame(fit = key, fixef = rel(a$fixef, b$fixef),
             fixef_per_se = max(abs(a$fixef - b$fixef) / b$se), fixef_se = rel(a$se, b$se),
             sd = rel(sqrt(diag(a$G)), sqrt(diag(b$G))),
             corr = max(abs(cov2cor(a$G) - cov2cor(b$G))), sigma = rel(a$sigma, b$sigma),
             loglik = abs(a$loglik - b$loglik),
             ranef = if (nrow(a$ranef) && key == "sleepstudy int_slope")
               max(abs(a$ranef - b$ranef[rownames(a$ranef), colnames(a$ranef)]) /
                   rep(apply(abs(b$ranef), 2, max), each = nrow(a$ranef))) else NA)
}))
print(agree, digits = 2, row.names = FALSE)

d_sl <- summaries[["sleepstudy int_slope"]]
y_sl <- summaries[["sleepstudy int_slope_years"]]
cat("\nYears refit vs days fit (lme4):\n")
cat(sprintf("  loglik years - days = %.12f; log(365.25) = %.12f\n",
            y_sl$lme4$loglik - d_sl$lme4$loglik, log(365.25)))
cat(sprintf("  sd slope: years %.12g, days * 365.25 %.12g (rel diff %.2g)\n",
            sqrt(y_sl$lme4$G[2, 2]), 365.25 * sqrt(d_sl$lme4$G[2, 2]),
            sqrt(y_sl$lme4$G[2, 2]) / (365.25 * sqrt(d_sl$lme4$G[2, 2])) - 1))
cat(sprintf("  sd intercept rel diff %.2g, sigma rel diff %.2g, corr diff %.2g\n",
            sqrt(y_sl$lme4$G[1, 1] / d_sl$lme4$G[1, 1]) - 1, y_sl$lme4$sigma / d_sl$lme4$sigma - 1,
            cov2cor(y_sl$lme4$G)[1, 2] - cov2cor(d_sl$lme4$G)[1, 2]))

# Known published values for sleepstudy int_slope (REML)
k <- d_sl$lme4
stopifnot(abs(k$fixef[1] - 251.405) < 1e-3, abs(k$fixef[2] - 10.467) < 1e-3,
          abs(sqrt(k$G[1, 1]) - 24.74) < 5e-3, abs(sqrt(k$G[2, 2]) - 5.92) < 5e-3,
          abs(cov2cor(k$G)[1, 2] - 0.066) < 5e-4, abs(k$sigma - 25.59) < 5e-3,
          abs(k$loglik - (-871.81)) < 5e-3)
cat("\nwrote", nrow(values), "values and", nrow(warns), "warnings to", out_dir, "\n")
